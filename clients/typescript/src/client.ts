// A small typed wrapper over the generated mmsearch.v1 stubs, speaking real gRPC (HTTP/2, h2c or TLS)
// through @connectrpc/connect-node's gRPC transport.
//
//   const client = new MMSearchClient("127.0.0.1:50051");
//   await client.createCollection("kb");
//   for await (const ack of client.ingest("kb", [textItem("a", "hello")])) console.log(ack.ok);
//   const { results } = await client.search("kb", "hello", { topK: 5 });
//   client.close();
//
// Every failure is thrown as an MMSearchError carrying the server's gRPC status code and message
// unchanged; a server that cannot be reached gives an MMSearchConnectionError within the deadline.
import { create, type DescMessage, type JsonObject, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor, type Client as RpcClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import type * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";

import { HealthCheckResponse_ServingStatus, Health } from "./gen/grpc/health/v1/health_pb.js";
import {
  type Collection,
  type CollectionConfigSchema,
  CollectionService,
} from "./gen/mmsearch/v1/collections_pb.js";
import type { FilterSchema, ImageSchema } from "./gen/mmsearch/v1/common_pb.js";
import { EmbedService, type GetInfoResponse, InfoService } from "./gen/mmsearch/v1/embed_pb.js";
import {
  type IngestAck,
  type IngestItemSchema,
  IngestRequestSchema,
  IngestService,
} from "./gen/mmsearch/v1/ingest_pb.js";
import { type Document as PageDocument, type Page, PageService } from "./gen/mmsearch/v1/pages_pb.js";
import {
  type RerankDocumentSchema,
  type RerankRequestSchema,
  type RerankResult,
  RerankService,
} from "./gen/mmsearch/v1/rerank_pb.js";
import {
  type QuerySchema,
  type SearchRequestSchema,
  type SearchResponse,
  SearchService,
} from "./gen/mmsearch/v1/search_pb.js";

/** Canonical gRPC status code names, indexed by code (Connect's `Code` enum uses the gRPC numbers). */
export const STATUS_CODE_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;
export type StatusCodeName = (typeof STATUS_CODE_NAMES)[number];

/** A failed call: the gRPC status code and the server's message, unchanged. */
export class MMSearchError extends Error {
  /** Numeric gRPC status code (`Code.NotFound === 5`). */
  readonly code: Code;
  /** Canonical gRPC name of the code, e.g. "NOT_FOUND". */
  readonly codeName: StatusCodeName;
  /** Response headers and trailers the server sent with the error. */
  readonly metadata: Headers;

  constructor(code: Code, message: string, options: { cause?: unknown; metadata?: Headers } = {}) {
    super(message, { cause: options.cause });
    this.name = "MMSearchError";
    this.code = code;
    this.codeName = STATUS_CODE_NAMES[code] ?? "UNKNOWN";
    this.metadata = options.metadata ?? new Headers();
  }

  override toString(): string {
    return `${this.name} [${this.codeName}]: ${this.message}`;
  }
}

/** The server could not be reached (refused, unresolvable, or no answer within the deadline). */
export class MMSearchConnectionError extends MMSearchError {
  /** The address the client was given. */
  readonly address: string;

  constructor(code: Code, address: string, message: string, cause?: unknown) {
    super(code, message, { cause });
    this.name = "MMSearchConnectionError";
    this.address = address;
  }
}

export interface ClientOptions {
  /** Deadline of each unary call in milliseconds (default 30000). Per-call `timeoutMs` overrides it. */
  timeoutMs?: number;
  /** Deadline of a whole ingest stream in milliseconds (default: none). */
  ingestTimeoutMs?: number;
  /** API key sent as `authorization: Bearer <key>` on every call (server started with --api-keys). */
  apiKey?: string;
  /**
   * TLS (server started with --tls-cert/--tls-key): PEM contents. `ca` trusts a private CA (default:
   * Node's public roots); `cert` and `key` are the client certificate for mutual TLS (--tls-client-ca).
   * Setting `tls` (or an https:// address) makes the client speak TLS; `serverName` overrides the name
   * checked against the server's certificate.
   */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; serverName?: string };
}

/** Per-call options every method accepts. */
export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export type CollectionConfigInit = MessageInitShape<typeof CollectionConfigSchema>;
export type IngestItemInit = MessageInitShape<typeof IngestItemSchema>;
export type QueryInit = MessageInitShape<typeof QuerySchema>;
export type FilterInit = MessageInitShape<typeof FilterSchema>;
export type ImageInit = MessageInitShape<typeof ImageSchema>;
/** The plain-object form of a message's init shape (without the message type itself). */
type PlainInit<D extends DescMessage> = Exclude<MessageInitShape<D>, Message>;
/** Search request fields besides collection and query (topK, filter, modalities, ranking, explain...). */
export type SearchOptions = Omit<PlainInit<typeof SearchRequestSchema>, "collection" | "query" | "$typeName"> &
  CallOptions;
/** Rerank request fields besides query and documents (topN, returnDocuments, method). */
export type RerankOptions = Omit<PlainInit<typeof RerankRequestSchema>, "query" | "documents" | "$typeName"> &
  CallOptions;
/** A rerank document: text, or image bytes (MIME type sniffed when not given). */
export type RerankInput = string | { data: Uint8Array; mimeType?: string };

export interface IngestOptions extends CallOptions {
  /** Create the collection with default settings if it does not exist. */
  createCollection?: boolean;
}

export interface IngestSummary {
  /** Every acknowledgement, in stream order. */
  acks: IngestAck[];
  /** Items stored. */
  ok: number;
  /** Items the server rejected (each with errorCode and error). */
  rejected: IngestAck[];
}

export type HealthStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

/** Guesses an image's MIME type from its first bytes (PNG, JPEG, TIFF, WebP); "" when unknown. */
export function sniffImageType(data: Uint8Array): string {
  const b = data;
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return "image/png";
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image/jpeg";
  if (b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a && b[3] === 0) ||
      (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 0x2a))) return "image/tiff";
  if (b.length >= 12 && String.fromCharCode(...b.subarray(0, 4)) === "RIFF" &&
      String.fromCharCode(...b.subarray(8, 12)) === "WEBP") return "image/webp";
  return "";
}

function image(data: Uint8Array, mimeType?: string): ImageInit {
  return { data, mimeType: mimeType || sniffImageType(data) };
}

/** An ingest item holding text (split into passages by the server). */
export function textItem(id: string, text: string, metadata?: JsonObject, source = ""): IngestItemInit {
  return { id, source, metadata: metadata ? { fields: metadata } : undefined, content: { case: "text", value: text } };
}

/** An ingest item holding a page image (PNG, JPEG, TIFF, WebP); the MIME type is sniffed when not given. */
export function imageItem(
  id: string,
  data: Uint8Array,
  options: { mimeType?: string; metadata?: JsonObject; source?: string } = {},
): IngestItemInit {
  return {
    id,
    source: options.source ?? "",
    metadata: options.metadata ? { fields: options.metadata } : undefined,
    content: { case: "image", value: image(data, options.mimeType) },
  };
}

/** An ingest item holding a PDF, rendered page by page by the server. */
export function pdfItem(id: string, data: Uint8Array, metadata?: JsonObject, source = ""): IngestItemInit {
  return { id, source, metadata: metadata ? { fields: metadata } : undefined, content: { case: "pdf", value: data } };
}

/** "host:port", "[::1]:port", "http://host:port" (h2c) or "https://host:port" (TLS) to a base URL. */
export function toBaseUrl(address: string, tls = false): string {
  if (/^https?:\/\//.test(address)) {
    if (tls && address.startsWith("http://")) {
      throw new MMSearchError(Code.InvalidArgument, `TLS options given with a plaintext address "${address}"`);
    }
    return address.replace(/\/+$/, "");
  }
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:/\s]+):\d+$/.test(address)) {
    throw new MMSearchError(Code.InvalidArgument, `invalid server address "${address}": expected host:port`);
  }
  return `${tls ? "https" : "http"}://${address}`;
}

const CONNECTION_ERRNOS = new Set([
  "ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EPIPE",
  "ERR_HTTP2_SESSION_ERROR", "ERR_HTTP2_ERROR", "ERR_HTTP2_PING_CANCEL", "ERR_HTTP2_GOAWAY_SESSION",
]);

/** Node's codes for TLS failures: OpenSSL alerts and certificate verification errors. */
function isTlsErrorCode(code: string): boolean {
  return (
    code.startsWith("ERR_SSL_") ||
    code.startsWith("ERR_TLS_") ||
    /^(UNABLE_TO_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/.test(code)
  );
}

type NodeHttp2ClientSessionManager = NonNullable<Parameters<typeof createGrpcTransport>[0]["sessionManager"]>;

/**
 * Connect's HTTP/2 session manager, remembering the last HTTP/2 session it handed out, so that a
 * deadline can be told apart: a peer that never completed the HTTP/2 handshake (never acknowledged our
 * SETTINGS) is a connection problem, not a slow call.
 */
class TrackingSessionManager implements NodeHttp2ClientSessionManager {
  readonly authority: string;
  private last: http2.Http2Session | undefined;
  /** The last TLS failure of a session: the peer refused our certificate, or we refused its. */
  tlsError: (Error & { code?: string }) | undefined;

  constructor(readonly inner: Http2SessionManager) {
    this.authority = inner.authority;
  }

  async request(
    method: string,
    path: string,
    headers: http2.OutgoingHttpHeaders,
    options: Omit<http2.ClientSessionRequestOptions, "signal">,
  ): Promise<http2.ClientHttp2Stream> {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = await this.inner.request(method, path, headers, options);
    } catch (e) {
      this.noteTls(e);
      throw e;
    }
    this.last = stream.session ?? this.last;
    return stream;
  }

  notifyResponseByteRead(stream: http2.ClientHttp2Stream): void {
    this.inner.notifyResponseByteRead(stream);
  }

  noteTls(e: unknown): void {
    const code = (e as { code?: unknown } | undefined)?.code;
    if (typeof code === "string" && isTlsErrorCode(code)) this.tlsError = e as Error & { code?: string };
  }

  /** True while no HTTP/2 server has answered: still connecting, or our SETTINGS never acknowledged. */
  handshakeIncomplete(): boolean {
    const state = this.inner.state();
    return state === "connecting" || (this.last !== undefined && this.last.pendingSettingsAck);
  }
}

export class MMSearchClient {
  readonly address: string;
  readonly baseUrl: string;
  /** The generated Connect clients, for RPCs the wrapper does not cover (Embed, Delete, ...). */
  readonly raw: {
    collections: RpcClient<typeof CollectionService>;
    ingest: RpcClient<typeof IngestService>;
    search: RpcClient<typeof SearchService>;
    rerank: RpcClient<typeof RerankService>;
    embed: RpcClient<typeof EmbedService>;
    info: RpcClient<typeof InfoService>;
    health: RpcClient<typeof Health>;
    pages: RpcClient<typeof PageService>;
  };
  private readonly session: TrackingSessionManager;
  private readonly timeoutMs: number;
  private readonly ingestTimeoutMs: number | undefined;

  constructor(address: string, options: ClientOptions = {}) {
    this.address = address;
    this.baseUrl = toBaseUrl(address, options.tls !== undefined);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.ingestTimeoutMs = options.ingestTimeoutMs;
    const { serverName, ...tlsFiles } = options.tls ?? {};
    // Our own TLS socket, so that its errors are seen from the start: a server refusing our client
    // certificate (TLS 1.3 checks it after the client's side of the handshake) only cancels the stream.
    const connectTls = (authority: URL): tls.TLSSocket => {
      const socket = tls.connect({
        ...tlsFiles,
        host: authority.hostname.replace(/^\[|\]$/g, ""),
        port: Number(authority.port || 443),
        servername: serverName ?? (net.isIP(authority.hostname) ? undefined : authority.hostname),
        ALPNProtocols: ["h2"],
      });
      socket.on("error", (e) => this.session.noteTls(e));
      socket.on("end", () => {
        // Closed after TLS but before the server's HTTP/2 SETTINGS: the server refused our certificate.
        if (socket.authorized && this.session.handshakeIncomplete()) {
          const what = tlsFiles.cert ? "this client's certificate (not signed by a CA it trusts?)" : "a client without a certificate";
          this.session.tlsError = Object.assign(
            new Error(`the server closed the connection right after the TLS handshake: it did not accept ${what} (mutual TLS)`),
            { code: "TLS_CLIENT_CERTIFICATE_REFUSED" },
          );
        }
      });
      return socket;
    };
    // One HTTP/2 connection, owned here so that close() can end it.
    this.session = new TrackingSessionManager(
      new Http2SessionManager(
        this.baseUrl,
        { idleConnectionTimeoutMs: 60_000 },
        options.tls ? { createConnection: connectTls } : undefined,
      ),
    );
    const apiKey = options.apiKey;
    // The key rides on every call as metadata, never in the URL or an error message.
    const auth: Interceptor = (next) => (req) => {
      if (apiKey) req.header.set("authorization", `Bearer ${apiKey}`);
      return next(req);
    };
    const transport = createGrpcTransport({
      baseUrl: this.baseUrl,
      sessionManager: this.session,
      interceptors: apiKey ? [auth] : [],
    });
    this.raw = {
      collections: createClient(CollectionService, transport),
      ingest: createClient(IngestService, transport),
      search: createClient(SearchService, transport),
      rerank: createClient(RerankService, transport),
      embed: createClient(EmbedService, transport),
      info: createClient(InfoService, transport),
      health: createClient(Health, transport),
      pages: createClient(PageService, transport),
    };
  }

  /** Closes the connection (open calls fail with CANCELLED/UNAVAILABLE). */
  close(): void {
    this.session.inner.abort();
  }

  // --- collections ---------------------------------------------------------------------------

  createCollection(name: string, config?: CollectionConfigInit, call?: CallOptions): Promise<Collection> {
    return this.unary(call, (o) => this.raw.collections.createCollection({ name, config }, o));
  }

  getCollection(name: string, call?: CallOptions): Promise<Collection> {
    return this.unary(call, (o) => this.raw.collections.getCollection({ name }, o));
  }

  async listCollections(call?: CallOptions): Promise<Collection[]> {
    const r = await this.unary(call, (o) => this.raw.collections.listCollections({}, o));
    return r.collections;
  }

  async deleteCollection(name: string, call?: CallOptions): Promise<void> {
    await this.unary(call, (o) => this.raw.collections.deleteCollection({ name }, o));
  }

  /** Deletes whole documents by id (or, with `filter`, every document whose metadata matches). */
  async deleteDocuments(
    collection: string,
    ids: string[],
    filter?: FilterInit,
    call?: CallOptions,
  ): Promise<bigint> {
    const r = await this.unary(call, (o) => this.raw.ingest.delete({ collection, ids, filter }, o));
    return r.deletedPoints;
  }

  /** A kept page (1-based): its image (WebP bytes), thumbnail, text and word boxes. NOT_FOUND when absent. */
  async getPage(collection: string, documentId: string, page = 1, call?: CallOptions): Promise<Page> {
    return this.unary(call, (o) => this.raw.pages.getPage({ collection, documentId, page }, o));
  }

  /** A document's metadata and pages (text, words, thumbnails; full images when `images`). */
  async getDocument(
    collection: string,
    documentId: string,
    options: { images?: boolean } = {},
    call?: CallOptions,
  ): Promise<PageDocument> {
    return this.unary(call, (o) =>
      this.raw.pages.getDocument({ collection, documentId, images: options.images ?? false }, o),
    );
  }

  // --- ingest --------------------------------------------------------------------------------

  /**
   * Streams items to the server and yields one acknowledgement per item, in order, as the server
   * stores them. A rejected item comes back as an ack with ok=false, errorCode and error; the stream
   * goes on. A failure of the stream itself (unknown collection, connection lost) throws MMSearchError.
   */
  async *ingest(
    collection: string,
    items: Iterable<IngestItemInit> | AsyncIterable<IngestItemInit>,
    options: IngestOptions = {},
  ): AsyncGenerator<IngestAck, void, undefined> {
    const createCollection = options.createCollection ?? false;
    async function* requests() {
      for await (const item of items) yield create(IngestRequestSchema, { collection, item, createCollection });
    }
    const timeoutMs = options.timeoutMs ?? this.ingestTimeoutMs;
    try {
      for await (const ack of this.raw.ingest.ingest(requests(), { timeoutMs, signal: options.signal })) yield ack;
    } catch (e) {
      throw this.toError(e, timeoutMs);
    }
  }

  /** ingest() to the end, calling onAck for each acknowledgement (progress); returns a summary. */
  async ingestAll(
    collection: string,
    items: Iterable<IngestItemInit> | AsyncIterable<IngestItemInit>,
    options: IngestOptions & { onAck?: (ack: IngestAck) => void } = {},
  ): Promise<IngestSummary> {
    const summary: IngestSummary = { acks: [], ok: 0, rejected: [] };
    for await (const ack of this.ingest(collection, items, options)) {
      summary.acks.push(ack);
      if (ack.ok) summary.ok++;
      else summary.rejected.push(ack);
      options.onAck?.(ack);
    }
    return summary;
  }

  // --- search and rerank ---------------------------------------------------------------------

  /** One ranked list over every modality of a collection. `query` is text, or {text?, image?}. */
  search(collection: string, query: string | QueryInit, options: SearchOptions = {}): Promise<SearchResponse> {
    const { timeoutMs, signal, ...rest } = options;
    const q: QueryInit = typeof query === "string" ? { text: query } : query;
    return this.unary({ timeoutMs, signal }, (o) => this.raw.search.search({ ...rest, collection, query: q }, o));
  }

  /** Stateless rerank of texts and/or images against a query; results best first. */
  async rerank(query: string, documents: RerankInput[], options: RerankOptions = {}): Promise<RerankResult[]> {
    const { timeoutMs, signal, ...rest } = options;
    const docs: MessageInitShape<typeof RerankDocumentSchema>[] = documents.map((d) =>
      typeof d === "string"
        ? { content: { case: "text", value: d } }
        : { content: { case: "image", value: image(d.data, d.mimeType) } },
    );
    const r = await this.unary({ timeoutMs, signal }, (o) =>
      this.raw.rerank.rerank({ ...rest, query, documents: docs }, o),
    );
    return r.results;
  }

  // --- server --------------------------------------------------------------------------------

  info(call?: CallOptions): Promise<GetInfoResponse> {
    return this.unary(call, (o) => this.raw.info.getInfo({}, o));
  }

  /** grpc.health.v1 Check: "SERVING" when the server (or `service`) is ready. */
  async health(service = "", call?: CallOptions): Promise<HealthStatus> {
    const r = await this.unary(call, (o) => this.raw.health.check({ service }, o));
    return (HealthCheckResponse_ServingStatus[r.status] ?? "UNKNOWN") as HealthStatus;
  }

  /**
   * Waits until the server answers SERVING, retrying while it is unreachable, for at most `timeoutMs`
   * (default 10000). Throws MMSearchConnectionError naming the address when the time runs out.
   */
  async waitForReady(timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < end) {
      try {
        const status = await this.health("", { timeoutMs: Math.max(1, Math.min(2000, end - Date.now())) });
        if (status === "SERVING") return;
        last = new Error(`health status ${status}`);
      } catch (e) {
        if (!(e instanceof MMSearchConnectionError)) throw e;
        last = e;
      }
      await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, end - Date.now()))));
    }
    const why = last instanceof Error ? last.message : String(last);
    throw new MMSearchConnectionError(
      Code.Unavailable,
      this.address,
      `mmsearch server at ${this.address} not ready within ${timeoutMs} ms: ${why}`,
      last,
    );
  }

  // --- internals -----------------------------------------------------------------------------

  private async unary<T>(call: CallOptions | undefined, fn: (o: CallOptions) => Promise<T>): Promise<T> {
    const timeoutMs = call?.timeoutMs ?? this.timeoutMs;
    try {
      return await fn({ timeoutMs, signal: call?.signal });
    } catch (e) {
      throw this.toError(e, timeoutMs);
    }
  }

  /** Maps any failure to MMSearchError, keeping the server's code and message unchanged. */
  private toError(e: unknown, timeoutMs?: number): MMSearchError {
    if (e instanceof MMSearchError) return e;
    const ce = ConnectError.from(e);
    const errno = (ce.cause as { code?: unknown } | undefined)?.code;
    const tls = typeof errno === "string" && isTlsErrorCode(errno) ? (ce.cause as Error) : this.session.tlsError;
    if (tls && ce.code !== Code.Unauthenticated && ce.code !== Code.PermissionDenied) {
      this.session.tlsError = undefined;
      return new MMSearchConnectionError(
        Code.Unavailable,
        this.address,
        `TLS with mmsearch server at ${this.address} failed: ${tls.message}` +
          ` (${(tls as { code?: string }).code ?? "TLS error"}; check the CA, the client certificate and the server name)`,
        ce,
      );
    }
    if (ce.code === Code.Unavailable && typeof errno === "string" && CONNECTION_ERRNOS.has(errno)) {
      return new MMSearchConnectionError(
        ce.code,
        this.address,
        `cannot connect to mmsearch server at ${this.address}: ${ce.rawMessage}`,
        ce,
      );
    }
    // A deadline that ran out before the HTTP/2 connection was up: nothing answered at that address.
    if (ce.code === Code.DeadlineExceeded && this.session.handshakeIncomplete()) {
      return new MMSearchConnectionError(
        ce.code,
        this.address,
        `no gRPC connection to mmsearch server at ${this.address} within the ${timeoutMs ?? "?"} ms deadline` +
          " (nothing listening that speaks HTTP/2, or the network drops packets)",
        ce,
      );
    }
    return new MMSearchError(ce.code, ce.rawMessage, { cause: ce, metadata: ce.metadata });
  }
}
