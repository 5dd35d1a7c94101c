// The TypeScript client against a server started with API keys and mutual TLS. Needs
// MMSEARCH_SECURE_ADDR=host:port plus MMSEARCH_SECURE_DIR, a folder with ca.pem, client.crt, client.key
// and keys.json ({"admin": key, "read": key, "write": key}); scripts/ci_clients.sh makes them and starts
// that server. Without MMSEARCH_SECURE_ADDR the suite skips.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { type ClientOptions, Code, MMSearchClient, MMSearchConnectionError, MMSearchError, textItem } from "../src/index.js";

const ADDR = process.env.MMSEARCH_SECURE_ADDR ?? "";
const DIR = process.env.MMSEARCH_SECURE_DIR ?? "";

async function rejects<T>(p: Promise<T>): Promise<MMSearchError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MMSearchError, `expected MMSearchError, got ${String(e)}`);
    return e;
  }
  assert.fail("expected the call to fail");
}

describe("secured server (API keys, mutual TLS)", { skip: ADDR ? false : "set MMSEARCH_SECURE_ADDR" }, () => {
  const file = (name: string) => readFileSync(join(DIR, name));
  const keys = () => JSON.parse(file("keys.json").toString()) as Record<"admin" | "read" | "write", string>;
  const tls = () => ({ ca: file("ca.pem"), cert: file("client.crt"), key: file("client.key") });
  const name = `ts_secure_${Date.now()}`;
  const opened: MMSearchClient[] = [];
  const client = (apiKey?: string, withTls: NonNullable<ClientOptions["tls"]> = tls()) => {
    const c = new MMSearchClient(ADDR, { timeoutMs: 20_000, tls: withTls, ...(apiKey ? { apiKey } : {}) });
    opened.push(c);
    return c;
  };

  before(async () => {
    await client(keys().admin).waitForReady(30_000);
  });

  after(async () => {
    try {
      await client(keys().admin).deleteCollection(name);
    } catch {
      // never created
    }
    for (const c of opened) c.close();
  });

  test("health is open over TLS; data calls without a key are UNAUTHENTICATED", async () => {
    const anonymous = client();
    assert.equal(await anonymous.health(), "SERVING");
    const e = await rejects(anonymous.listCollections());
    assert.equal(e.code, Code.Unauthenticated);
    const wrong = await rejects(client("not-a-key").listCollections());
    assert.equal(wrong.code, Code.Unauthenticated);
    assert.ok(!wrong.message.includes("not-a-key"), "the key must not be echoed");
  });

  test("roles: admin creates, write ingests, read searches but may not write", async () => {
    const k = keys();
    const denied = await rejects(client(k.write).createCollection(name));
    assert.equal(denied.code, Code.PermissionDenied);
    await client(k.admin).createCollection(name);
    const acks = await client(k.write).ingestAll(name, [textItem("whale", "The blue whale is the largest animal.")]);
    assert.equal(acks.ok, 1);
    const r = await client(k.read).search(name, "largest animal", { topK: 1 });
    assert.equal(r.results[0]?.documentId, "whale");
    const readOnly = await rejects(client(k.read).ingestAll(name, [textItem("x", "nope")]));
    assert.equal(readOnly.code, Code.PermissionDenied);
    assert.ok(readOnly.message.includes("read"), readOnly.message);
  });

  test("without a client certificate the TLS handshake is refused", async () => {
    const { ca } = tls();
    const e = await rejects(client(keys().admin, { ca }).listCollections());
    assert.ok(e instanceof MMSearchConnectionError, `${e.codeName}: ${e.message}`);
    assert.equal(e.code, Code.Unavailable);
    assert.match(e.message, /without a certificate/);
  });

  test("a CA the client does not trust fails before any data is sent", async () => {
    const { cert, key } = tls();
    const e = await rejects(client(keys().admin, { cert, key }).listCollections());
    assert.ok(e instanceof MMSearchConnectionError, `${e.codeName}: ${e.message}`);
    assert.equal(e.code, Code.Unavailable);
    assert.match(e.message, /TLS .* failed: .*certificate/);
  });
});
