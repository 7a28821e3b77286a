// The hashing test page (/hashing): choose files, see each file's hashes or its error. The
// person's full flow (steps, consent, submit) builds on hasher.js in a later page; this one is
// what the browser tests and bench/web_bench.py drive. Everything it shows carries data-testid
// and data-* attributes so tests read results without depending on wording.
import { HashPool } from "./hasher.js";
import { message } from "./messages.js";

const root = document.querySelector("[data-kalkan-hashing]");
const language = document.documentElement.lang === "tr" ? "tr" : "en";
const input = root.querySelector("[data-testid=file-input]");
const list = root.querySelector("[data-testid=results]");
const status = root.querySelector("[data-testid=pyodide-status]");
const cspViolations = [];

document.addEventListener("securitypolicyviolation", (event) => {
  cspViolations.push({ directive: event.violatedDirective, blockedURI: event.blockedURI, where: "page" });
  root.dataset.cspViolations = String(cspViolations.length);
});

// Knobs for tests and bench/web_bench.py: ?workers=N, ?maxMegapixels=N (a device with less
// memory), ?cancelGraceMs=N (how long a cancelled worker may take before it is replaced).
const params = new URLSearchParams(location.search);
const workers = Number(params.get("workers")) || undefined;
const maxMegapixels = Number(params.get("maxMegapixels")) || undefined;
const pool = new HashPool({
  workers,
  maxPixels: maxMegapixels ? maxMegapixels * 1e6 : undefined,
  cancelGraceMs: Number(params.get("cancelGraceMs")) || undefined,
  onCspViolation: (v) => {
    cspViolations.push({ ...v, where: "worker" });
    root.dataset.cspViolations = String(cspViolations.length);
  },
});
root.dataset.cspViolations = "0";
root.dataset.workers = String(pool.size);
root.dataset.maxPixels = String(pool.maxPixels);
root.dataset.replacedWorkers = "0";
status.dataset.state = "loading";
pool.ready.then(
  (info) => {
    status.dataset.state = "ready";
    status.dataset.readyMs = String(Math.round(info.readyMs));
    status.dataset.firstReadyMs = String(Math.round(info.firstReadyMs));
    status.dataset.boot = JSON.stringify(info.boot);
    status.textContent = `Ready (Pyodide ${info.pyodide}, ${info.workers} workers, ${Math.round(info.readyMs)} ms).`;
  },
  (err) => {
    status.dataset.state = "failed";
    status.textContent = `The hashing engine could not start: ${err.message}`;
  },
);

let pending = 0;
function setPending(delta) {
  pending += delta;
  root.dataset.pending = String(pending);
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text) node.textContent = text;
  return node;
}

async function addFile(file, index) {
  const item = element("li", { "data-testid": "file-result", "data-name": file.name, "data-index": index, "data-state": "queued" });
  item.append(element("span", { class: "file-name" }, file.name));
  const progress = element("progress", { max: 1 });
  const aborter = new AbortController();
  const cancel = element("button", { type: "button", "data-testid": "file-cancel" }, language === "tr" ? "İptal" : "Cancel");
  cancel.addEventListener("click", () => aborter.abort());
  item.append(progress, cancel);
  list.append(item);
  setPending(1);
  try {
    const result = await pool.hashFile(file, {
      signal: aborter.signal,
      onProgress: (p) => {
        item.dataset.state = p.stage;
        if (p.total) progress.value = p.done / p.total;
      },
    });
    progress.value = 1;
    item.dataset.state = "done";
    item.dataset.kind = result.kind;
    for (const [key, ms] of Object.entries(result.timings)) item.dataset[key] = String(Math.round(ms));
    const hashes = element("ul", { class: "hashes" });
    for (const h of result.hashes) {
      const attrs = { "data-testid": "hash", "data-signal-type": h.signal_type, "data-value": h.value };
      if (h.quality !== undefined) attrs["data-quality"] = h.quality;
      if (h.orientation) attrs["data-orientation"] = h.orientation;
      if (h.bands) attrs["data-bands"] = h.bands;
      if (h.frames) attrs["data-frames"] = h.frames;
      const label = h.orientation === "raw" ? `${h.signal_type} (as stored, without EXIF rotation)` : h.signal_type;
      hashes.append(element("li", attrs, `${label}: ${h.value}${h.quality !== undefined ? ` (quality ${h.quality})` : ""}`));
    }
    item.append(hashes);
    if (result.video) item.dataset.video = JSON.stringify(result.video);
    if (result.videoNote) {
      const text = message(result.videoNote.code, language, { detail: result.videoNote.detail });
      item.append(element("p", { "data-testid": "file-note", "data-code": result.videoNote.code }, text));
    }
  } catch (err) {
    progress.remove();
    item.dataset.state = "error";
    const code = err.code ?? "internal";
    const text = err.text ? err.text(language) : String(err);
    item.append(element("p", { "data-testid": "file-error", "data-code": code, class: "error" }, text));
  } finally {
    cancel.remove();
    root.dataset.replacedWorkers = String(pool.replaced);
    setPending(-1);
  }
}

input.addEventListener("change", () => {
  const files = [...input.files];
  const start = list.children.length;
  files.forEach((file, i) => addFile(file, start + i));
  input.value = "";
});
root.dataset.pending = "0";
input.disabled = false;
