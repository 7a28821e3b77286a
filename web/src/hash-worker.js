// The hashing worker: a module Web Worker that runs pyhash under Pyodide, both loaded from our
// own origin (web/build_web.py puts them in /assets/; nothing else is ever requested).
//
// Messages in: {id, op, ...}, or {cancel: id} to stop that call at its next safe point (it then
// answers with error code "cancelled"). Out: {id, progress} any number of times, then
// {id, ok: true, result} or {id, ok: false, error: {code, values, detail}}. Ops:
//   init                      -> {bootMs, pyodide}: resolves once Python is ready
//   image  {file, bands, splitPixels, maxPixels}
//                             -> {format, exifOrientation, variants: [...]}: decodes the photo as
//      displayed (EXIF orientation applied) and, when EXIF rotates or flips it, as stored ("raw").
//      Each variant has its hash, or, for an image of at least splitPixels when bands > 1, the
//      RGBA bytes cut into `bands` row bands (transferred, not copied) for `sums` on any worker.
//   sums   {data, width, height, row_start, row_stop}  -> JSON text of the band's exact sums
//   finish {bands, width, height}                       -> {hash, quality} from all bands' sums
//   video  {file, job}        -> {md5, vpdq: {signal, frames, frameRate, codec, width, height}
//      | null, vpdqError: {code, detail} | null, timings}: MD5 streamed, then vPDQ from frames
//      decoded with WebCodecs (video.js); a video this browser cannot decode still gets its MD5.
import { PYODIDE_DIR, PYTHON_ARCHIVE } from "./assets-config.js";
import { exifOrientation } from "./exif.js";
import { sniff } from "./sniff.js";
import { VideoError, decodeVideoFrames } from "./video.js";

const MAX_PIXELS = 100_000_000; // as pyhash.images: larger images are refused before decoding
const MIN_DIMENSION = 5; // PDQ's reference gives smaller images the all-zero hash
const cancelledCalls = new Set(); // ids the page asked to stop

class HashError extends Error {
  constructor(code, values = {}, detail = "") {
    super(detail || code);
    this.code = code;
    this.values = values;
  }
}

let glue; // the kalkan_worker module (PyProxy)
const ready = (async () => {
  const started = performance.now();
  const indexURL = new URL(PYODIDE_DIR, import.meta.url).href;
  const { loadPyodide } = await import(indexURL + "pyodide.mjs");
  const imported = performance.now();
  const pyodide = await loadPyodide({
    indexURL,
    stdLibURL: new URL(PYTHON_ARCHIVE, import.meta.url).href, // trimmed stdlib + pyhash
    stdout: (line) => console.debug("[python]", line),
    stderr: (line) => console.debug("[python]", line),
  });
  const loaded = performance.now();
  glue = pyodide.pyimport("kalkan_worker");
  const now = performance.now();
  return {
    bootMs: now - started,
    stages: { importMs: imported - started, loadPyodideMs: loaded - imported, pyhashMs: now - loaded },
    pyodide: pyodide.version,
  };
})();

async function readHead(file) {
  try {
    return new Uint8Array(await file.slice(0, 64).arrayBuffer());
  } catch (err) {
    throw new HashError("read_failed", {}, String(err));
  }
}

async function decode(file, format, maxPixels) {
  let bitmap;
  try {
    // EXIF orientation applied, as the person sees the photo.
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image", premultiplyAlpha: "default", colorSpaceConversion: "default" });
  } catch (err) {
    const code = format === null ? "not_image" : ["heic", "tiff"].includes(format) ? "unsupported_format" : "damaged";
    throw new HashError(code, { format }, String(err));
  }
  const { width, height } = bitmap;
  if (width * height > maxPixels) { // formats whose header the page could not read (e.g. BMP variants)
    bitmap.close();
    throw new HashError("too_large", { megapixels: Math.round((width * height) / 1e6), limit: Math.floor(maxPixels / 1e6), width, height });
  }
  if (width < MIN_DIMENSION || height < MIN_DIMENSION) {
    bitmap.close();
    throw new HashError("too_small", { width, height });
  }
  return bitmap;
}

// The canvas transform (a, b, c, d, e, f) that maps the displayed image (W x H) back to the
// stored pixels, per EXIF orientation: the inverse of what the orientation asks a viewer to do.
// Chromium's createImageBitmap has no way to skip EXIF orientation ("none" still applies it),
// so the stored pixels are recovered exactly by this lossless permutation instead.
function toStored(orientation, W, H) {
  switch (orientation) {
    case 2: return [-1, 0, 0, 1, W, 0]; // mirrored horizontally
    case 3: return [-1, 0, 0, -1, W, H]; // rotated 180
    case 4: return [1, 0, 0, -1, 0, H]; // mirrored vertically
    case 5: return [0, 1, 1, 0, 0, 0]; // transposed
    case 6: return [0, -1, 1, 0, 0, W]; // shown rotated 90 clockwise: undo counter-clockwise
    case 7: return [0, -1, -1, 0, H, W]; // transversed
    case 8: return [0, 1, -1, 0, H, 0]; // shown rotated 90 counter-clockwise: undo clockwise
    default: return [1, 0, 0, 1, 0, 0];
  }
}

// Draws the bitmap (as displayed, or transformed back to the stored orientation) on white, as
// pyhash.images composites transparent pixels on white.
function render(bitmap, orientation) {
  const swap = orientation >= 5;
  const width = swap ? bitmap.height : bitmap.width;
  const height = swap ? bitmap.width : bitmap.height;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { alpha: false, willReadFrequently: true });
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  ctx.setTransform(...toStored(orientation, bitmap.width, bitmap.height));
  ctx.drawImage(bitmap, 0, 0);
  return { canvas, ctx, width, height };
}

const ops = {
  async init() {
    return { result: await ready };
  },

  async image({ file, bands = 1, splitPixels = Infinity, maxPixels = MAX_PIXELS }, { progress, checkpoint }) {
    if (file.size === 0) throw new HashError("empty");
    const format = sniff(await readHead(file));
    await ready;
    checkpoint();
    const orientation = await exifOrientation(file, format).catch(() => 1);
    const wanted = [["displayed", 1]];
    if (orientation !== 1) wanted.push(["raw", orientation]);
    const variants = [];
    const transfer = [];
    progress({ stage: "decoding" });
    let t0 = performance.now();
    const bitmap = await decode(file, format, Math.min(maxPixels, MAX_PIXELS));
    for (const [name, transform] of wanted) {
      try {
        checkpoint();
      } catch (err) {
        bitmap.close();
        throw err;
      }
      const { canvas, ctx, width, height } = render(bitmap, transform);
      if (name === wanted[wanted.length - 1][0]) bitmap.close();
      const n = bands > 1 && width * height >= splitPixels ? Math.min(bands, height) : 1;
      if (n === 1) {
        const data = ctx.getImageData(0, 0, width, height).data;
        canvas.width = canvas.height = 0; // free the canvas before Python copies the pixels
        const decodeMs = performance.now() - t0;
        progress({ stage: "hashing", orientation: name });
        const t1 = performance.now();
        const hashed = JSON.parse(glue.pdq_rgba(data, width, height));
        variants.push({ orientation: name, width, height, ...hashed, decodeMs, hashMs: performance.now() - t1 });
        t0 = performance.now();
      } else {
        const parts = [];
        for (let k = 0; k < n; k++) {
          const rowStart = Math.floor((k * height) / n);
          const rowStop = Math.floor(((k + 1) * height) / n);
          // Each band is read back into its own buffer: transferable, and no copy of the whole.
          const data = ctx.getImageData(0, rowStart, width, rowStop - rowStart).data;
          parts.push({ row_start: rowStart, row_stop: rowStop, data });
          transfer.push(data.buffer);
        }
        canvas.width = canvas.height = 0;
        variants.push({ orientation: name, width, height, bands: parts, decodeMs: performance.now() - t0 });
        t0 = performance.now();
      }
    }
    return { result: { format, exifOrientation: orientation, variants }, transfer };
  },

  async sums({ data, width, height, row_start, row_stop }) {
    await ready;
    return { result: glue.band_sums(data, width, height, row_start, row_stop) };
  },

  async finish({ bands, width, height }) {
    await ready;
    return { result: JSON.parse(glue.finish(bands, width, height)) };
  },

  async video({ file, job }, { progress, checkpoint }) {
    if (file.size === 0) throw new HashError("empty");
    await ready;
    const t0 = performance.now();
    const md5 = await streamMd5(file, job, progress, checkpoint);
    const t1 = performance.now();
    let vpdq = null;
    let vpdqError = null;
    const builder = {
      start: (frameRate) => glue.vpdq_start(job, frameRate ?? undefined), // undefined: None (null would be jsnull)
      wants: (seconds) => glue.vpdq_wants(job, seconds),
      skip: () => glue.vpdq_skip(job),
      add: (data, width, height, channels, seconds) => glue.vpdq_add(job, data, width, height, channels, seconds),
    };
    try {
      const info = await decodeVideoFrames(file, builder, {
        checkpoint,
        progress: ({ done, total }) => progress({ stage: "frames", done, total }),
      });
      vpdq = { ...JSON.parse(glue.vpdq_finish(job)), ...info };
    } catch (err) {
      glue.vpdq_cancel(job);
      if (!(err instanceof VideoError)) throw err; // cancelled, or a bug: the caller hears it
      vpdqError = { code: err.code, detail: err.message };
    }
    return { result: { md5, vpdq, vpdqError, timings: { md5Ms: t1 - t0, vpdqMs: performance.now() - t1 } } };
  },
};

const MD5_CHUNK = 1 << 20; // bytes read at a time: constant memory, a safe point between reads

async function streamMd5(file, job, progress, checkpoint) {
  glue.md5_start(job);
  try {
    for (let offset = 0; offset < file.size; offset += MD5_CHUNK) {
      checkpoint();
      let chunk;
      try {
        chunk = new Uint8Array(await file.slice(offset, offset + MD5_CHUNK).arrayBuffer());
      } catch (err) {
        throw new HashError("read_failed", {}, String(err));
      }
      glue.md5_update(job, chunk);
      progress({ stage: "hashing", done: Math.min(offset + MD5_CHUNK, file.size), total: file.size });
    }
    return glue.md5_finish(job);
  } catch (err) {
    glue.md5_cancel(job);
    throw err;
  }
}

self.addEventListener("securitypolicyviolation", (event) => {
  self.postMessage({ cspViolation: { directive: event.violatedDirective, blockedURI: event.blockedURI } });
});

self.onmessage = async ({ data }) => {
  if (data.cancel !== undefined) {
    cancelledCalls.add(data.cancel); // seen by the call's next checkpoint()
    return;
  }
  const { id, op } = data;
  const checkpoint = () => {
    if (cancelledCalls.has(id)) throw new HashError("cancelled");
  };
  try {
    const handler = ops[op];
    if (!handler) throw new Error(`unknown op ${op}`);
    const { result, transfer = [] } = await handler(data, { progress: (progress) => self.postMessage({ id, progress }), checkpoint });
    self.postMessage({ id, ok: true, result }, transfer);
  } catch (err) {
    const error = err instanceof HashError
      ? { code: err.code, values: err.values, detail: err.message }
      : { code: "internal", values: {}, detail: String(err?.message ?? err) };
    self.postMessage({ id, ok: false, error });
  } finally {
    cancelledCalls.delete(id);
  }
};
