// The mmsearch web console: pick a collection, search, look at why results matched, add and delete
// documents. Deep link: /?collection=C&q=QUERY runs that search on load.
import { ConnectError } from "@connectrpc/connect";

import { type Collection, IndexState } from "../src/gen/mmsearch/v1/collections_pb.js";
import { Modality } from "../src/gen/mmsearch/v1/common_pb.js";
import { type Page, type SimilarityMap } from "../src/gen/mmsearch/v1/pages_pb.js";
import { type BoundingBox, FusionStrategy, type SearchResult, type TokenMatch } from "../src/gen/mmsearch/v1/search_pb.js";
import { collections, imageMime, ingest, pages, search, uploadFile, webpUrl } from "./api.js";
import { type Dropped, dropped } from "./drop.js";
import { parseFilter } from "./filter.js";

type Child = Node | string;
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}
const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const ui = {
  collection: byId<HTMLSelectElement>("collection"),
  info: byId<HTMLSpanElement>("collection-info"),
  form: byId<HTMLFormElement>("search-form"),
  q: byId<HTMLInputElement>("q"),
  qImage: byId<HTMLInputElement>("qimage"),
  qImageName: byId<HTMLSpanElement>("qimage-name"),
  modality: byId<HTMLSelectElement>("modality"),
  fusion: byId<HTMLSelectElement>("fusion"),
  filter: byId<HTMLInputElement>("filter"),
  status: byId<HTMLDivElement>("status"),
  results: byId<HTMLDivElement>("results"),
  drop: byId<HTMLDivElement>("drop"),
  files: byId<HTMLInputElement>("files"),
  folder: byId<HTMLInputElement>("folder"),
  uploads: byId<HTMLUListElement>("uploads"),
  pageView: byId<HTMLDialogElement>("page-view"),
};

const message = (e: unknown) => (e instanceof ConnectError ? e.rawMessage : e instanceof Error ? e.message : String(e));
const collectionsByName = new Map<string, Collection>();

async function loadCollections(select?: string): Promise<void> {
  const { collections: list } = await collections.listCollections({});
  collectionsByName.clear();
  ui.collection.replaceChildren(...list.map((c) => el("option", { value: c.name }, c.name)));
  for (const c of list) collectionsByName.set(c.name, c);
  if (select && !collectionsByName.has(select)) ui.collection.append(el("option", { value: select }, select));
  if (select) ui.collection.value = select;
  showInfo();
}

function showInfo(): void {
  const c = collectionsByName.get(ui.collection.value);
  if (!c) return void (ui.info.textContent = "");
  const models = c.spaces.map((s) => `${s.name}: ${s.encoder?.model ?? "?"}`).join(" · ");
  const state = c.indexState === IndexState.INDEXING ? "indexing" : "indexed";
  ui.info.textContent = `${c.documentCount} documents · ${c.pointCount} points · ${state} · ${models}`;
}

const queryWords = (q: string) => new Set(q.toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) ?? []);

/** The snippet with the words the query shares marked. */
function snippet(text: string, words: Set<string>): HTMLElement {
  const p = el("p", { class: "snippet" });
  for (const part of text.split(/([\p{L}\p{N}]+)/u)) {
    p.append(words.has(part.toLowerCase()) ? el("mark", {}, part) : part);
  }
  return p;
}

/** A box over an image, positioned in percent of the page so that it scales with it. */
function box(b: BoundingBox, width: number, height: number, cls: string, title: string): HTMLElement {
  const style = `left:${(100 * b.x0) / width}%;top:${(100 * b.y0) / height}%;width:${(100 * (b.x1 - b.x0)) / width}%;height:${(100 * (b.y1 - b.y0)) / height}%`;
  return el("span", { class: cls, style, title });
}

/** ColPali explanations name a matched patch "patch r<row>c<col>" (words are named by their text). */
const isPatch = (m: TokenMatch) => m.documentToken.startsWith("patch");

/** Boxes of matched words over an image. */
function boxes(matches: TokenMatch[], width: number, height: number, cls = "hit"): HTMLElement[] {
  if (!width || !height) return [];
  return matches
    .filter((m) => m.box && !isPatch(m))
    .map((m) => box(m.box!, width, height, cls, `${m.queryToken} → ${m.documentToken} (${m.similarity.toFixed(2)})`));
}

/** The page's best-matching patches (several query tokens often pick the same patch: it is drawn once,
 * with the tokens it answered), strongest first, shaded by rank. */
function patches(matches: TokenMatch[], width: number, height: number, top = 5): HTMLElement[] {
  if (!width || !height) return [];
  const best = new Map<string, { m: TokenMatch; tokens: string[] }>();
  for (const m of matches.filter((m) => m.box && isPatch(m))) {
    const seen = best.get(m.documentToken);
    if (!seen) best.set(m.documentToken, { m, tokens: [m.queryToken] });
    else {
      seen.tokens.push(m.queryToken);
      if (m.similarity > seen.m.similarity) seen.m = m;
    }
  }
  return [...best.values()]
    .sort((a, b) => b.m.similarity - a.m.similarity)
    .slice(0, top)
    .map(({ m, tokens }, rank) => {
      const node = box(m.box!, width, height, "patch", `${m.documentToken} ← ${tokens.join(" ")} (${m.similarity.toFixed(2)})`);
      node.style.opacity = String(1 - rank * 0.15);
      return node;
    });
}

function signals(r: SearchResult): HTMLElement {
  const s = r.explanation?.signals ?? {};
  const parts = Object.entries(s).map(([k, v]) => el("span", { class: "signal" }, `${k} ${v.toFixed(2)}`));
  // Pages: where the words came from (the PDF's text layer, or the OCR models that read the scan).
  const source = r.explanation?.textSource ?? "";
  if (source) {
    const reader = r.explanation?.ocrReader ?? "";
    const text = source === "pdf" ? "words: PDF text layer" : `words: ${source}${reader ? ` (${reader})` : ""}`;
    parts.push(el("span", { class: "signal source" }, text));
  }
  return el("div", { class: "signals" }, ...parts);
}

function card(r: SearchResult, words: Set<string>): HTMLElement {
  const isPage = r.modality === Modality.PAGE;
  const where = isPage ? `page ${r.page}` : `passage ${r.passage + 1}`;
  const del = el("button", { class: "delete", title: `delete ${r.documentId}` }, "Delete");
  del.addEventListener("click", (ev) => {
    ev.stopPropagation();
    void deleteDocument(r.documentId);
  });
  const head = el(
    "div",
    { class: "card-head" },
    el("span", { class: `badge ${isPage ? "page" : "text"}` }, isPage ? "page" : "text"),
    el("strong", { class: "doc-id" }, r.documentId),
    el("span", { class: "where" }, where),
  );
  const score = el(
    "div",
    { class: "score" },
    el("span", { class: "bar", style: `width:${Math.round(r.score * 100)}%` }),
    el("span", { class: "value" }, `score ${r.score.toFixed(3)}`),
  );
  const body: HTMLElement[] = [];
  if (isPage && r.thumbnail.length) {
    const ex = r.explanation;
    body.push(
      el(
        "div",
        { class: "thumb" },
        el("img", { src: webpUrl(r.thumbnail), alt: `${r.documentId} page ${r.page}` }),
        ...boxes(ex?.matches ?? [], ex?.pageWidth ?? 0, ex?.pageHeight ?? 0),
        ...patches(ex?.matches ?? [], ex?.pageWidth ?? 0, ex?.pageHeight ?? 0),
      ),
    );
  }
  body.push(snippet(r.snippet, words));
  const node = el("article", { class: "card", "data-doc": r.documentId }, head, ...body, score, signals(r), del);
  if (isPage) node.addEventListener("click", () => void openPage(r));
  return node;
}

/** The example image of a query by image, if one was picked or dropped. */
let queryImage: File | null = null;

function setQueryImage(file: File | null): void {
  queryImage = file;
  ui.qImageName.hidden = file === null;
  ui.qImageName.textContent = file ? `image: ${file.name} ✕` : "";
}

async function runSearch(): Promise<void> {
  const collection = ui.collection.value;
  const text = ui.q.value.trim();
  if (!collection || (!text && !queryImage)) return;
  const url = new URL(window.location.href);
  url.searchParams.set("collection", collection);
  url.searchParams.set("q", text);
  history.replaceState(null, "", url);
  ui.status.textContent = "Searching…";
  try {
    const modality = Number(ui.modality.value);
    const res = await search.search({
      collection,
      query: {
        text,
        image: queryImage
          ? { data: new Uint8Array(await queryImage.arrayBuffer()), mimeType: imageMime(queryImage.name) ?? queryImage.type }
          : undefined,
      },
      topK: 12,
      explain: true,
      thumbnails: true,
      modalities: modality ? [modality] : [],
      ranking: { fusion: Number(ui.fusion.value) },
      filter: parseFilter(ui.filter.value),
    });
    const words = queryWords(text);
    ui.results.replaceChildren(...res.results.map((r) => card(r, words)));
    const ms = res.timings?.totalMs.toFixed(0) ?? "?";
    ui.status.textContent = res.results.length
      ? `${res.results.length} results in ${ms} ms — one ranked list over text passages and scanned pages`
      : "No results.";
  } catch (e) {
    ui.results.replaceChildren();
    ui.status.textContent = `Search failed: ${message(e)}`;
  }
}

/** The similarity map as a heat overlay: one canvas pixel per patch, stretched over the page. Each
 * patch shows its best score over the chosen query tokens (all of them: the page's answer to the
 * whole query), scaled from the page's coldest to its hottest patch. */
function heat(map: SimilarityMap, token: number): HTMLCanvasElement {
  const { rows, cols } = map;
  const canvas = el("canvas", { class: "heat", width: String(cols), height: String(rows) });
  const cell = rows * cols;
  const tokens = token < 0 ? map.queryTokens.map((_, i) => i) : [token];
  const values = Array.from({ length: cell }, (_, p) => Math.max(...tokens.map((t) => map.scores[t * cell + p])));
  const lo = Math.min(...values);
  const span = Math.max(...values) - lo || 1;
  const ctx = canvas.getContext("2d")!;
  const img = ctx.createImageData(cols, rows);
  values.forEach((v, p) => {
    const x = (v - lo) / span;
    img.data.set([255, Math.round(200 * (1 - x)), 0, Math.round(20 + 130 * x)], 4 * p); // the page stays readable under it
  });
  ctx.putImageData(img, 0, 0);
  return canvas;
}

/** The "similarity map" control of a ColPali page: a toggle and the query token to show. */
function similarityControl(r: SearchResult, view: HTMLElement, query: string): HTMLElement {
  const toggle = el("input", { type: "checkbox", id: "heat-toggle" });
  const token = el("select", { id: "heat-token", hidden: "" }, el("option", { value: "-1" }, "all query tokens"));
  const label = el("label", { class: "heat-control", title: "How each patch of the page answers the query (GetSimilarityMap)" }, toggle, " similarity map ", token);
  let map: SimilarityMap | null = null;
  const draw = () => {
    view.querySelector(".heat")?.remove();
    if (toggle.checked && map) view.append(heat(map, Number(token.value)));
  };
  toggle.addEventListener("change", async () => {
    if (toggle.checked && !map) {
      try {
        map = await pages.getSimilarityMap({ collection: ui.collection.value, documentId: r.documentId, page: r.page, query });
      } catch (e) {
        toggle.checked = false;
        ui.status.textContent = `No similarity map: ${message(e)}`;
        return;
      }
      token.append(...map.queryTokens.map((t, i) => el("option", { value: String(i) }, t)));
      token.hidden = false;
    }
    draw();
  });
  token.addEventListener("change", draw);
  return label;
}

async function openPage(r: SearchResult): Promise<void> {
  let page: Page;
  try {
    page = await pages.getPage({ collection: ui.collection.value, documentId: r.documentId, page: r.page });
  } catch (e) {
    ui.status.textContent = `Cannot open the page: ${message(e)}`;
    return;
  }
  const all = page.words.map((w) => ({ box: w.box, queryToken: "", documentToken: w.text, similarity: 0 }));
  const matches = r.explanation?.matches ?? [];
  const view = el(
    "div",
    { class: "page-image" },
    ...(page.image.length ? [el("img", { src: webpUrl(page.image), alt: `${page.documentId} page ${page.page}` })] : []),
    ...boxes(all as TokenMatch[], page.width, page.height, "word"),
    ...boxes(matches, page.width, page.height),
    ...patches(matches, page.width, page.height),
  );
  const close = el("button", { class: "close" }, "Close");
  close.addEventListener("click", () => ui.pageView.close());
  const query = ui.q.value.trim();
  const controls = matches.some(isPatch) && query ? [similarityControl(r, view, query)] : [];
  ui.pageView.replaceChildren(
    el("div", { class: "page-head" }, el("strong", {}, `${page.documentId} — page ${page.page}`), ...controls, close),
    el("div", { class: "page-body" }, view, el("div", { class: "page-text" }, snippet(page.text, queryWords(ui.q.value)))),
  );
  ui.pageView.showModal();
}

async function deleteDocument(id: string): Promise<void> {
  if (!confirm(`Delete document "${id}" and its pages?`)) return;
  try {
    await ingest.delete({ collection: ui.collection.value, ids: [id] });
    ui.status.textContent = `Deleted ${id}.`;
    await loadCollections(ui.collection.value);
    await runSearch();
  } catch (e) {
    ui.status.textContent = `Delete failed: ${message(e)}`;
  }
}

async function upload(files: Dropped[]): Promise<void> {
  const collection = ui.collection.value || prompt("Collection to add the files to:", "kb") || "";
  if (!collection || !files.length) return;
  const rows = files.map(({ path }) => {
    const row = el("li", { class: "pending" }, el("span", { class: "name" }, path), el("span", { class: "state" }, "waiting"));
    ui.uploads.prepend(row);
    return row;
  });
  for (const [i, got] of files.entries()) {
    const row = rows[i];
    const state = row.querySelector(".state")!;
    if ("error" in got) {
      row.className = "error";
      state.textContent = got.error;
      continue;
    }
    state.textContent = "uploading…";
    try {
      const ack = await uploadFile(collection, got.file, got.path);
      row.className = ack?.ok ? "ok" : "error";
      state.textContent = ack?.ok ? `ok · ${ack.points} points` : `${ack?.errorCode}: ${ack?.error}`;
    } catch (e) {
      row.className = "error";
      state.textContent = message(e);
    }
  }
  await loadCollections(collection);
}

function wire(): void {
  ui.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void runSearch();
  });
  ui.collection.addEventListener("change", () => {
    showInfo();
    void runSearch();
  });
  ui.qImage.addEventListener("change", () => {
    setQueryImage(ui.qImage.files?.[0] ?? null);
    void runSearch();
  });
  ui.qImageName.addEventListener("click", () => setQueryImage(null));
  ui.q.addEventListener("dragover", (ev) => ev.preventDefault());
  ui.q.addEventListener("drop", (ev) => {
    ev.preventDefault();
    const file = ev.dataTransfer?.files[0];
    if (file && imageMime(file.name)) {
      setQueryImage(file);
      void runSearch();
    }
  });
  const pick = (input: HTMLInputElement) => () =>
    void upload([...(input.files ?? [])].map((f) => ({ file: f, path: f.webkitRelativePath || f.name })));
  ui.files.addEventListener("change", pick(ui.files));
  ui.folder.addEventListener("change", pick(ui.folder));
  ui.drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    ui.drop.classList.add("over");
  });
  ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("over"));
  ui.drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    ui.drop.classList.remove("over");
    void dropped(ev.dataTransfer).then(upload);
  });
  for (const [label, value] of [
    ["weighted z-score", FusionStrategy.WEIGHTED_ZSCORE],
    ["calibrated z-score", FusionStrategy.CALIBRATED_ZSCORE],
    ["RRF", FusionStrategy.RRF],
    ["DBSF", FusionStrategy.DBSF],
    ["MaxSim only", FusionStrategy.MAXSIM],
  ] as const) {
    ui.fusion.append(el("option", { value: String(value) }, label));
  }
}

async function main(): Promise<void> {
  wire();
  const params = new URLSearchParams(window.location.search);
  const wanted = params.get("collection") ?? undefined;
  try {
    await loadCollections(wanted);
  } catch (e) {
    ui.status.textContent = `Cannot reach the server: ${message(e)}`;
    return;
  }
  const q = params.get("q");
  if (q) {
    ui.q.value = q;
    await runSearch();
  }
}

void main();
