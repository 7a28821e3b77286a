// Hashing photos and videos in the person's browser: a pool of hashing workers
// (hash-worker.js). Files hash in parallel, one per free worker; a large photo is decoded by one
// worker and its row bands hashed by all of them (PDQ's sums are exact integers that add up).
// Nothing here touches the network except the workers loading Pyodide from our origin.
//
// Every file can be cancelled with an AbortSignal: work still queued is dropped at once, work
// running in a worker stops at the worker's next safe point (between file chunks, decode and
// hash, video frames); a worker stuck in one long Python call is terminated and replaced after
// `cancelGraceMs`. The caller's promise rejects with HashError("cancelled") immediately.
import { message } from "./messages.js";
import { imageDimensions, sniff } from "./sniff.js";

const WORKER_URL = new URL("./hash-worker.js", import.meta.url);
const MAX_PIXELS = 100_000_000; // as pyhash.images: no device hashes more than this
// Peak memory while one photo is hashed is about 16 bytes a pixel (the decoded bitmap, the
// canvas, the RGBA read back, Python's copy). A device may spend a fifth of its memory on it.
const BYTES_PER_PIXEL = 16;
const MEMORY_SHARE = 0.2;

export class HashError extends Error {
  constructor(code, values = {}, detail = "") {
    super(detail || code);
    this.name = "HashError";
    this.code = code;
    this.values = values;
  }

  /** The message to show the person, in `language` ("tr" or "en"). */
  text(language) {
    return message(this.code, language, this.values);
  }
}

const cancelled = () => new HashError("cancelled");

export function defaultWorkerCount() {
  return Math.max(1, Math.min(4, globalThis.navigator?.hardwareConcurrency || 2));
}

/** The largest photo (in pixels) this device should decode: 100 MP, less on small devices
 * (navigator.deviceMemory, in GB, is rounded and capped by the browser; absent: assume 4). */
export function defaultMaxPixels(deviceMemoryGB = globalThis.navigator?.deviceMemory) {
  const gb = Number.isFinite(deviceMemoryGB) && deviceMemoryGB > 0 ? deviceMemoryGB : 4;
  const budget = Math.floor((gb * 2 ** 30 * MEMORY_SHARE) / BYTES_PER_PIXEL);
  return Math.min(MAX_PIXELS, Math.max(4_000_000, budget));
}

export class HashPool {
  /**
   * workers: how many hashing workers (each runs its own Pyodide).
   * splitPixels: photos at least this large are hashed in row bands across all workers.
   * maxPixels: larger photos are refused from their header, before decoding (too_large).
   * cancelGraceMs: how long a cancelled worker may take to reach a safe point before it is
   *   terminated and replaced (replacing costs a Pyodide boot, so it is a last resort).
   * onCspViolation: called with what a worker reports from its securitypolicyviolation events.
   */
  constructor({ workers = defaultWorkerCount(), splitPixels = 1_000_000, maxPixels = defaultMaxPixels(),
    cancelGraceMs = 3000, onCspViolation = () => {} } = {}) {
    this.size = workers;
    this.splitPixels = splitPixels;
    this.maxPixels = Math.min(MAX_PIXELS, maxPixels);
    this.cancelGraceMs = cancelGraceMs;
    this.onCspViolation = onCspViolation;
    this.slots = [];
    this.queue = [];
    this.calls = new Map();
    this.nextId = 1;
    this.closed = false;
    this.replaced = 0; // workers terminated and started again (crashes, stuck cancellations)
    // The first worker boots alone; the others start once it is ready. Booting them all at once
    // on a 2-core phone makes the first one ready ~40% later (they share the CPU with each
    // other's WebAssembly compilation), and files hash as soon as one worker is ready. The
    // later ones also reuse the browser's compiled code of Pyodide's WebAssembly.
    const started = performance.now();
    let firstReadyMs = null;
    this.slots.push(this.#spawn(0));
    for (let i = 1; i < workers; i++) this.slots.push({ index: i, worker: null, busy: true, dead: false, current: null });
    const first = this.#send(this.slots[0], { op: "init" }).then((boot) => {
      firstReadyMs = performance.now() - started;
      return boot;
    });
    const rest = first.then(() => Promise.all(this.slots.slice(1).map((placeholder) => {
      if (this.closed) throw new HashError("internal", {}, "closed");
      const slot = this.#spawn(placeholder.index);
      this.slots[placeholder.index] = slot;
      return this.#send(slot, { op: "init" });
    })));
    this.ready = Promise.all([first, rest]).then(([boot, others]) => [boot, ...others]).then((done) => ({
      readyMs: performance.now() - started,
      firstReadyMs,
      boot: done.map((b) => ({ ms: b.bootMs, ...b.stages })),
      pyodide: done[0].pyodide,
      workers: this.size,
    }));
    this.ready.catch(() => {}); // callers see the rejection; no unhandled-rejection noise
  }

  #spawn(index) {
    const worker = new Worker(WORKER_URL, { type: "module", name: `kalkan-hash-${index}` });
    const slot = { index, worker, busy: true, current: null, booted: false };
    worker.onmessage = ({ data }) => this.#receive(slot, data);
    worker.onerror = (event) => {
      // The worker died (e.g. out of memory): fail its call, replace it, go on with the others.
      event.preventDefault?.();
      this.#fail(slot, new HashError("internal", {}, `worker failed: ${event.message ?? "error"}`));
      if (slot.booted) this.#replace(slot); // never respawn a worker that could not even start
      else slot.worker.terminate();
    };
    return slot;
  }

  /** Terminates the slot's worker and starts a fresh one in its place. */
  #replace(slot) {
    slot.worker.terminate();
    slot.dead = true;
    if (this.closed) return;
    this.replaced += 1;
    const fresh = this.#spawn(slot.index);
    fresh.booted = true; // its predecessor booted: the same code will
    this.slots[slot.index] = fresh;
    this.#send(fresh, { op: "init" }).catch(() => {});
  }

  /** Rejects the slot's current call (if its caller still waits) and forgets it. */
  #fail(slot, error) {
    const call = slot.current && this.calls.get(slot.current);
    if (call) {
      this.calls.delete(slot.current);
      call.settle?.();
      if (!call.done) call.reject(error);
    }
    slot.current = null;
  }

  #receive(slot, data) {
    if (slot.dead) return;
    if (data.cspViolation) {
      this.onCspViolation(data.cspViolation);
      return;
    }
    const call = this.calls.get(data.id);
    if (!call) return;
    if (data.progress) {
      if (!call.done) call.onProgress?.(data.progress);
      return;
    }
    this.calls.delete(data.id);
    call.settle?.();
    slot.booted ||= data.ok;
    slot.busy = false;
    slot.current = null;
    if (!call.done) { // a cancelled call already rejected; its late answer is dropped
      if (data.ok) call.resolve(data.result);
      else call.reject(new HashError(data.error.code, data.error.values, data.error.detail));
    }
    this.#pump();
  }

  #send(slot, { op, payload = {}, transfer = [], onProgress, signal }) {
    const id = this.nextId++;
    slot.busy = true;
    slot.current = id;
    return new Promise((resolve, reject) => {
      const call = { resolve, reject, onProgress, done: false };
      if (signal) {
        const abort = () => this.#cancelRunning(slot, id, call);
        signal.addEventListener("abort", abort, { once: true });
        call.settle = () => signal.removeEventListener("abort", abort);
      }
      this.calls.set(id, call);
      slot.worker.postMessage({ id, op, ...payload }, transfer);
    });
  }

  /** A running call was cancelled: its caller hears at once; the worker is told to stop at its
   * next safe point and replaced if it has not answered within cancelGraceMs. */
  #cancelRunning(slot, id, call) {
    if (call.done) return;
    call.done = true;
    call.reject(cancelled());
    slot.worker.postMessage({ cancel: id });
    setTimeout(() => {
      if (!slot.dead && slot.current === id) {
        this.calls.delete(id);
        slot.current = null;
        this.#replace(slot);
      }
    }, this.cancelGraceMs);
  }

  #pump() {
    for (const slot of this.slots) {
      if (!this.queue.length) return;
      if (slot.busy || slot.dead) continue;
      const task = this.queue.shift();
      task.dequeued();
      this.#send(slot, task).then(task.resolve, task.reject);
    }
  }

  /** Runs `op` on the next free worker; `signal` cancels it (queued or running). */
  run(op, payload = {}, transfer = [], onProgress = undefined, signal = undefined) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(cancelled());
        return;
      }
      const task = { op, payload, transfer, onProgress, signal, resolve, reject, dequeued: () => {} };
      if (signal) {
        const drop = () => {
          const at = this.queue.indexOf(task);
          if (at >= 0) {
            this.queue.splice(at, 1);
            reject(cancelled());
          }
        };
        signal.addEventListener("abort", drop, { once: true });
        task.dequeued = () => signal.removeEventListener("abort", drop);
      }
      this.queue.push(task);
      this.#pump();
    });
  }

  /**
   * Fingerprints one File. Resolves to {kind: "image"|"video", format, hashes: [{signal_type,
   * value, quality?, orientation?}], timings}; rejects with a HashError whose code says why
   * (empty, not_image, damaged, unsupported_format, too_small, too_large, read_failed,
   * cancelled, internal). onProgress gets {stage: "decoding"|"hashing", done?, total?}.
   * signal: an AbortSignal that cancels this file (the promise then rejects with "cancelled").
   * A video resolves with md5 and, when this browser can decode it, vpdq; `videoNote` says why
   * vpdq is missing otherwise.
   */
  async hashFile(file, { onProgress = () => {}, signal } = {}) {
    const started = performance.now();
    const check = () => {
      if (signal?.aborted) throw cancelled();
    };
    check();
    if (file.size === 0) throw new HashError("empty");
    let head;
    try {
      head = new Uint8Array(await file.slice(0, 64).arrayBuffer());
    } catch (err) {
      throw new HashError("read_failed", {}, String(err));
    }
    check();
    const format = sniff(head);
    if (format === "video" || (format === null && file.type.startsWith("video/"))) {
      return this.#hashVideo(file, format, started, onProgress, signal);
    }
    // Refuse what this device should not decode before decoding it: the header says how big.
    const size = await imageDimensions(file, format).catch(() => null);
    check();
    if (size && size.width * size.height > this.maxPixels) {
      throw new HashError("too_large", {
        megapixels: Math.round((size.width * size.height) / 1e6), limit: Math.floor(this.maxPixels / 1e6),
        width: size.width, height: size.height,
      });
    }
    const decoded = await this.run("image", { file, bands: this.size, splitPixels: this.splitPixels, maxPixels: this.maxPixels },
      [], onProgress, signal);
    const hashes = [];
    const timings = { decodeMs: 0, hashMs: 0 };
    for (const variant of decoded.variants) {
      let { hash, quality, acceptable } = variant;
      timings.decodeMs += variant.decodeMs;
      if (variant.bands) {
        check();
        onProgress({ stage: "hashing", orientation: variant.orientation });
        const t0 = performance.now();
        const { width, height } = variant;
        const sums = await Promise.all(variant.bands.map((band) =>
          this.run("sums", { data: band.data, width, height, row_start: band.row_start, row_stop: band.row_stop },
            [band.data.buffer], undefined, signal)));
        ({ hash, quality, acceptable } = await this.run("finish", { bands: sums, width, height }, [], undefined, signal));
        timings.hashMs += performance.now() - t0;
      } else {
        timings.hashMs += variant.hashMs;
      }
      hashes.push({
        signal_type: "pdq", value: hash, quality, acceptable, orientation: variant.orientation,
        width: variant.width, height: variant.height, bands: variant.bands ? variant.bands.length : 1,
      });
    }
    check();
    // A browser that shows the stored pixels as they are gives the same hash twice: keep one.
    const unique = hashes.filter((h, i) => i === 0 || h.value !== hashes[0].value);
    timings.totalMs = performance.now() - started;
    return { kind: "image", format: decoded.format, exifOrientation: decoded.exifOrientation, hashes: unique, timings };
  }

  async #hashVideo(file, format, started, onProgress, signal) {
    const result = await this.run("video", { file, job: this.nextId++ }, [], onProgress, signal);
    const hashes = [{ signal_type: "md5", value: result.md5 }];
    if (result.vpdq) {
      hashes.push({ signal_type: "vpdq", value: result.vpdq.signal, frames: result.vpdq.frames.length });
    }
    return {
      kind: "video",
      format,
      hashes,
      video: result.vpdq ? { ...result.vpdq, signal: undefined } : null,
      videoNote: result.vpdqError ?? null, // {code, detail}: why there is no vPDQ (md5 still counts)
      timings: { ...result.timings, totalMs: performance.now() - started },
    };
  }

  close() {
    this.closed = true;
    for (const slot of this.slots) slot.worker?.terminate();
    for (const call of this.calls.values()) if (!call.done) call.reject(new HashError("internal", {}, "closed"));
    this.calls.clear();
    for (const task of this.queue.splice(0)) task.reject(new HashError("internal", {}, "closed"));
  }
}
