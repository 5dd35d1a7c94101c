import { createClient, ConnectError } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CollectionService } from "/work/main/clients/typescript/src/gen/mmsearch/v1/collections_pb.js";
import * as net from "node:net";
async function tryIt(url: string, timeoutMs: number) {
  const t = createGrpcTransport({ baseUrl: url });
  const c = createClient(CollectionService, t);
  const t0 = Date.now();
  try {
    const r = await c.getCollection({ name: "nope" }, { timeoutMs });
    console.log("ok", r);
  } catch (e) {
    const ce = ConnectError.from(e);
    console.log(url, Date.now() - t0, "ms", ce.code, JSON.stringify(ce.rawMessage), "msg=", ce.message, "cause=", (ce.cause as any)?.code, String(ce.cause));
  }
}
const srv = net.createServer(() => {}).listen(0, "127.0.0.1");
await new Promise((r) => srv.once("listening", r));
const port = (srv.address() as net.AddressInfo).port;
await tryIt("http://127.0.0.1:50099", 2000);
await tryIt("http://127.0.0.1:1", 2000);
await tryIt(`http://127.0.0.1:${port}`, 1500);
srv.close();
