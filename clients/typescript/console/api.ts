// The server, over Connect JSON from the same origin, through the generated mmsearch.v1 stubs.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

import { CollectionService } from "../src/gen/mmsearch/v1/collections_pb.js";
import { IngestService } from "../src/gen/mmsearch/v1/ingest_pb.js";
import { PageService } from "../src/gen/mmsearch/v1/pages_pb.js";
import { SearchService } from "../src/gen/mmsearch/v1/search_pb.js";

const transport = createConnectTransport({ baseUrl: window.location.origin, useBinaryFormat: false });

export const collections = createClient(CollectionService, transport);
export const ingest = createClient(IngestService, transport);
export const pages = createClient(PageService, transport);
export const search = createClient(SearchService, transport);

/** How a dropped file is sent, by its extension; null when the server does not take that type. */
export type FileKind = { kind: "text"; mime: string } | { kind: "image"; mime: string } | { kind: "pdf" };

const KINDS: Record<string, FileKind> = {
  txt: { kind: "text", mime: "text/plain" },
  md: { kind: "text", mime: "text/markdown" },
  png: { kind: "image", mime: "image/png" },
  jpg: { kind: "image", mime: "image/jpeg" },
  jpeg: { kind: "image", mime: "image/jpeg" },
  tif: { kind: "image", mime: "image/tiff" },
  tiff: { kind: "image", mime: "image/tiff" },
  webp: { kind: "image", mime: "image/webp" },
  pdf: { kind: "pdf" },
};

export function fileKind(name: string): FileKind | null {
  const ext = name.toLowerCase().split(".").pop() ?? "";
  return KINDS[ext] ?? null;
}

/** The mime type of an image file the server reads, else null. */
export function imageMime(name: string): string | null {
  const kind = fileKind(name);
  return kind?.kind === "image" ? kind.mime : null;
}

/** One file as one IngestBatch call; resolves to the item's acknowledgement. */
export async function uploadFile(collection: string, file: File, path: string) {
  const kind = fileKind(file.name);
  if (kind === null) throw new Error("unsupported file type (use .txt .md .png .jpg .tif .webp .pdf)");
  const data = new Uint8Array(await file.arrayBuffer());
  const id = path.replace(/\.[^.]+$/, "");
  const content =
    kind.kind === "text"
      ? { case: "textFile" as const, value: { data, mimeType: kind.mime } }
      : kind.kind === "image"
        ? { case: "image" as const, value: { data, mimeType: kind.mime } }
        : { case: "pdf" as const, value: data };
  const res = await ingest.ingestBatch({
    requests: [{ collection, createCollection: true, item: { id, source: path, content } }],
  });
  return res.acks[0];
}

export function webpUrl(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return `data:image/webp;base64,${btoa(s)}`;
}
