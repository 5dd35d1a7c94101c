// Tests of the TypeScript client. The "live server" suite needs MMSEARCH_ADDR=host:port of a running
// mmsearch server (scripts/ci_clients.sh starts one with the fake encoder); the rest needs no server.
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, describe, test } from "node:test";

import {
  Code,
  imageItem,
  type IngestItemInit,
  MMSearchClient,
  MMSearchConnectionError,
  MMSearchError,
  Modality,
  sniffImageType,
  textItem,
  toBaseUrl,
} from "../src/index.js";
import { renderTextPng } from "./png.js";

const ADDR = process.env.MMSEARCH_ADDR ?? "";

async function rejects<T>(p: Promise<T>): Promise<MMSearchError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MMSearchError, `expected MMSearchError, got ${String(e)}`);
    return e;
  }
  assert.fail("expected the call to fail");
}

describe("helpers", () => {
  test("addresses become base URLs", () => {
    assert.equal(toBaseUrl("127.0.0.1:50051"), "http://127.0.0.1:50051");
    assert.equal(toBaseUrl("[::1]:50051"), "http://[::1]:50051");
    assert.equal(toBaseUrl("https://search.example:443/"), "https://search.example:443");
    assert.equal(toBaseUrl("127.0.0.1:50051", true), "https://127.0.0.1:50051");
    assert.throws(() => toBaseUrl("http://127.0.0.1:50051", true), /TLS options given with a plaintext address/);
    const e = (() => {
      try {
        toBaseUrl("no-port");
      } catch (err) {
        return err;
      }
    })();
    assert.ok(e instanceof MMSearchError);
    assert.equal(e.codeName, "INVALID_ARGUMENT");
  });

  test("image types are sniffed from the bytes", () => {
    assert.equal(sniffImageType(renderTextPng(["HI"])), "image/png");
    assert.equal(sniffImageType(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])), "image/jpeg");
    assert.equal(sniffImageType(new Uint8Array([1, 2, 3])), "");
  });
});

describe("connection errors", () => {
  test("a refused port gives MMSearchConnectionError (UNAVAILABLE) at once", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const client = new MMSearchClient(`127.0.0.1:${port}`, { timeoutMs: 5000 });
    const t0 = Date.now();
    const e = await rejects(client.listCollections());
    client.close();
    assert.ok(e instanceof MMSearchConnectionError, String(e));
    assert.equal(e.code, Code.Unavailable);
    assert.equal(e.codeName, "UNAVAILABLE");
    assert.match(e.message, new RegExp(`cannot connect to mmsearch server at 127\\.0\\.0\\.1:${port}`));
    assert.ok(Date.now() - t0 < 5000);
  });

  test("a silent listener gives MMSearchConnectionError within the deadline", async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s)); // accepts, never speaks HTTP/2
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    const client = new MMSearchClient(`127.0.0.1:${port}`);
    const t0 = Date.now();
    const e = await rejects(client.health("", { timeoutMs: 500 }));
    const elapsed = Date.now() - t0;
    client.close();
    for (const s of sockets) s.destroy();
    server.close();
    assert.ok(e instanceof MMSearchConnectionError, String(e));
    assert.equal(e.codeName, "DEADLINE_EXCEEDED");
    assert.match(e.message, /within the 500 ms deadline/);
    assert.ok(elapsed < 3000, `took ${elapsed} ms`);
  });

  test("waitForReady gives up with a clear error", async () => {
    const client = new MMSearchClient("127.0.0.1:1");
    const t0 = Date.now();
    const e = await rejects(client.waitForReady(600));
    client.close();
    assert.ok(e instanceof MMSearchConnectionError);
    assert.match(e.message, /not ready within 600 ms/);
    assert.ok(Date.now() - t0 < 3000);
  });
});

describe("live server", { skip: ADDR ? false : "set MMSEARCH_ADDR=host:port to run against a server" }, () => {
  let client: MMSearchClient;
  const name = `ts_client_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  const png = renderTextPng(["INVOICE TOTAL 42", "BLUE WHALE REPORT"]);

  before(async () => {
    client = new MMSearchClient(ADDR, { timeoutMs: 60_000 });
    await client.waitForReady(30_000);
  });

  after(async () => {
    try {
      await client.deleteCollection(name);
    } catch {
      // already deleted by the test
    }
    client.close();
  });

  test("health and info", async () => {
    assert.equal(await client.health(), "SERVING");
    const info = await client.info();
    assert.ok(info.version.length > 0);
    assert.ok(info.maxTopK > 0);
  });

  test("collections: create, duplicate, get, list", async () => {
    const c = await client.createCollection(name, { chunking: { maxWords: 50, overlapWords: 10 } });
    assert.equal(c.name, name);
    const dup = await rejects(client.createCollection(name));
    assert.equal(dup.code, Code.AlreadyExists);
    assert.equal(dup.codeName, "ALREADY_EXISTS");
    assert.ok(dup.message.includes(name), dup.message);
    assert.equal((await client.getCollection(name)).name, name);
    assert.ok((await client.listCollections()).some((x) => x.name === name));
  });

  test("ingest streams one ack per item, in order, rejecting bad items without ending", async () => {
    const items: IngestItemInit[] = [
      textItem("whale", "The blue whale is the largest animal known to have lived.", { topic: "ocean", year: 2024 }),
      textItem("tax", "Submit the quarterly tax invoice before the deadline.", { topic: "finance", year: 2023 }),
      // Claims JPEG but carries PNG bytes: rejected in its own ack.
      imageItem("bad-image", png, { mimeType: "image/jpeg", source: "bad.jpg" }),
      imageItem("page", png, { metadata: { topic: "finance" }, source: "page.png" }),
      textItem("rocket", "A rocket engine burns fuel to make thrust.", { topic: "space", year: 2022 }),
    ];
    const seen: number[] = [];
    const summary = await client.ingestAll(name, items, { onAck: (a) => seen.push(Number(a.sequence)) });
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
    assert.deepEqual(summary.acks.map((a) => a.id), ["whale", "tax", "bad-image", "page", "rocket"]);
    assert.equal(summary.ok, 4);
    assert.equal(summary.rejected.length, 1);
    const bad = summary.rejected[0]!;
    assert.equal(bad.id, "bad-image");
    assert.equal(bad.source, "bad.jpg");
    assert.equal(bad.errorCode, "INVALID_ARGUMENT");
    assert.ok(bad.error.length > 0);
    for (const a of summary.acks.filter((x) => x.ok)) assert.ok(a.points >= 1, `${a.id}: ${a.points} points`);
    const c = await client.getCollection(name);
    assert.equal(c.documentCount, 4n);
  });

  test("search: text, the OCR'd page, filters", async () => {
    const r = await client.search(name, "blue whale largest animal", { topK: 3 });
    assert.ok(r.results.length > 0);
    assert.equal(r.results[0]!.documentId, "whale");
    for (let i = 1; i < r.results.length; i++) assert.ok(r.results[i - 1]!.score >= r.results[i]!.score);
    assert.ok(r.timings && r.timings.totalMs >= 0);

    const pages = await client.search(name, "invoice total", { modalities: [Modality.PAGE], topK: 5 });
    assert.equal(pages.results.length, 1);
    const page = pages.results[0]!;
    assert.equal(page.documentId, "page");
    assert.equal(page.modality, Modality.PAGE);
    assert.match(page.snippet, /invoice/i, `OCR text: ${JSON.stringify(page.snippet)}`);
    assert.deepEqual(page.metadata?.fields, { topic: "finance" });

    const filtered = await client.search(name, "invoice", {
      topK: 10,
      filter: { must: [{ key: "topic", condition: { case: "match", value: { kind: { case: "stringValue", value: "finance" } } } }] },
    });
    assert.deepEqual(new Set(filtered.results.map((x) => x.documentId)), new Set(["tax", "page"]));
  });

  test("the kept page reads back: image, text, words; a missing page is NOT_FOUND", async () => {
    const page = await client.getPage(name, "page", 1);
    assert.equal(page.mimeType, "image/webp");
    assert.deepEqual([...page.image.subarray(8, 12)].map((b) => String.fromCharCode(b)).join(""), "WEBP");
    assert.match(page.text, /invoice/i);
    assert.ok(page.words.length > 0 && page.words.every((w) => w.box !== undefined));
    const doc = await client.getDocument(name, "page");
    assert.deepEqual(doc.pages.map((p) => p.page), [1]);
    assert.equal(doc.pages[0]!.image.length, 0); // full images only when asked for
    const missing = await rejects(client.getPage(name, "page", 2));
    assert.equal(missing.codeName, "NOT_FOUND");
  });

  test("rerank texts and an image", async () => {
    const docs = ["A rocket engine burns fuel.", "The blue whale is the largest animal.", { data: png }];
    const results = await client.rerank("blue whale largest animal", docs, { returnDocuments: true });
    assert.equal(results.length, 3);
    assert.deepEqual([...results.map((r) => r.index)].sort(), [0, 1, 2]);
    assert.equal(results[0]!.index, 1);
    for (const r of results) assert.ok(r.relevanceScore >= 0 && r.relevanceScore <= 1, String(r.relevanceScore));
    for (let i = 1; i < results.length; i++) assert.ok(results[i - 1]!.relevanceScore >= results[i]!.relevanceScore);
    assert.equal(results[0]!.document?.content.case, "text");
    const top1 = await client.rerank("rocket fuel", docs.slice(0, 2), { topN: 1 });
    assert.equal(top1.length, 1);
    assert.equal(top1[0]!.index, 0);
  });

  test("server errors keep their gRPC code and message", async () => {
    const missing = `${name}_missing`;
    const e1 = await rejects(client.getCollection(missing));
    assert.equal(e1.code, Code.NotFound);
    assert.equal(e1.codeName, "NOT_FOUND");
    assert.ok(e1.message.includes(missing), e1.message);
    assert.ok(!e1.message.startsWith("[not_found]"), "message is the server's, unprefixed");
    assert.ok(!(e1 instanceof MMSearchConnectionError));

    const e2 = await rejects(client.search(missing, "anything"));
    assert.equal(e2.codeName, "NOT_FOUND");

    const e3 = await rejects(client.search(name, "anything", { topK: 1_000_000 }));
    assert.equal(e3.codeName, "INVALID_ARGUMENT");
    assert.ok(e3.message.length > 0);

    // A stream-level failure (not a per-item rejection) throws from the ingest stream.
    const e4 = await rejects(client.ingestAll(missing, [textItem("x", "some text")]));
    assert.equal(e4.codeName, "NOT_FOUND");
    assert.ok(e4.message.includes(missing), e4.message);
  });

  test("ingest can create the collection", async () => {
    const auto = `${name}_auto`;
    try {
      const summary = await client.ingestAll(auto, [textItem("x", "created on first ingest")], { createCollection: true });
      assert.equal(summary.ok, 1);
      assert.equal((await client.getCollection(auto)).documentCount, 1n);
    } finally {
      await client.deleteCollection(auto);
    }
  });

  test("delete documents and the collection", async () => {
    const deleted = await client.deleteDocuments(name, ["rocket"]);
    assert.ok(deleted >= 1n);
    assert.equal((await client.getCollection(name)).documentCount, 3n);
    await client.deleteCollection(name);
    assert.equal((await rejects(client.getCollection(name))).codeName, "NOT_FOUND");
  });
});
