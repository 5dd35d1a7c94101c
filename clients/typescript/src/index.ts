// Public entry point: the wrapper, its errors and helpers, and the generated mmsearch.v1 types.
export * from "./client.js";
export { Code } from "@connectrpc/connect";
export * from "./gen/mmsearch/v1/collections_pb.js";
export * from "./gen/mmsearch/v1/common_pb.js";
export * from "./gen/mmsearch/v1/embed_pb.js";
export * from "./gen/mmsearch/v1/ingest_pb.js";
export * from "./gen/mmsearch/v1/pages_pb.js";
export * from "./gen/mmsearch/v1/rerank_pb.js";
export * from "./gen/mmsearch/v1/search_pb.js";
