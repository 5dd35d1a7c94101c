// Quickstart: create a collection, stream in text and a page image, search, rerank, clean up.
//   MMSEARCH_ADDR=127.0.0.1:50051 npx tsx examples/quickstart.ts [page.png ...]
// With no image arguments it draws a small page ("INVOICE TOTAL 42") for the server to OCR.
import { readFileSync } from "node:fs";
import { basename } from "node:path";

import {
  imageItem,
  type IngestItemInit,
  MMSearchClient,
  MMSearchError,
  Modality,
  textItem,
} from "../src/index.js";
import { renderTextPng } from "../test/png.js";  // the tests' drawn page: no binary fixture in the repo

const address = process.env.MMSEARCH_ADDR ?? "127.0.0.1:50051";
const collection = process.env.MMSEARCH_COLLECTION ?? "quickstart";
const client = new MMSearchClient(address, { timeoutMs: 30_000 });

try {
  await client.waitForReady(10_000);
  const info = await client.info();
  console.log(`connected to mmsearch ${info.version} at ${address} (storage: ${info.storageBackend})`);

  try {
    await client.createCollection(collection);
  } catch (e) {
    if (!(e instanceof MMSearchError && e.codeName === "ALREADY_EXISTS")) throw e;
  }

  const images = process.argv.slice(2);
  const items: IngestItemInit[] = [
    textItem("whale", "The blue whale is the largest animal known to have lived.", { topic: "ocean" }),
    textItem("rocket", "A rocket engine burns fuel and oxidiser to make thrust.", { topic: "space" }),
    ...(images.length
      ? images.map((p) => imageItem(basename(p), readFileSync(p), { source: p }))
      : [imageItem("invoice.png", renderTextPng(["INVOICE TOTAL 42"]), { metadata: { topic: "finance" } })]),
  ];
  const summary = await client.ingestAll(collection, items, {
    onAck: (a) =>
      console.log(
        a.ok ? `  stored ${a.id}: ${a.points} point(s)` : `  rejected ${a.id} (${a.source}): ${a.errorCode} ${a.error}`,
      ),
  });
  console.log(`ingested ${summary.ok}/${summary.acks.length}`);

  for (const query of ["largest animal", "invoice total"]) {
    const { results, timings } = await client.search(collection, query, { topK: 3 });
    console.log(`search "${query}" (${timings?.totalMs.toFixed(1)} ms):`);
    for (const r of results) {
      const where = r.modality === Modality.PAGE ? `page ${r.page}` : `passage ${r.passage + 1}`;  // 1-based, as the CLI and the console show it
      console.log(`  ${r.score.toFixed(3)}  ${r.documentId} ${where}: ${r.snippet.slice(0, 60)}`);
    }
  }

  const ranked = await client.rerank("what makes thrust", ["Whales eat krill.", "Rocket engines make thrust."]);
  console.log("rerank:", ranked.map((r) => `#${r.index} ${r.relevanceScore.toFixed(3)}`).join(", "));

  await client.deleteCollection(collection);
} catch (e) {
  // Server errors keep their gRPC code and message: e.g. NOT_FOUND, INVALID_ARGUMENT, UNAVAILABLE.
  if (e instanceof MMSearchError) {
    console.error(`${e.codeName}: ${e.message}`);
    process.exitCode = 1;
  } else {
    throw e;
  }
} finally {
  client.close();
}
