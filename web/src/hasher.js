// Hashing photos and videos in the person's browser: a pool of hashing workers
// (hash-worker.js). Files hash in parallel, one per free worker; a large photo is decoded by one
// worker and its row bands hashed by all of them (PDQ's sums are exact integers that add up).
// Nothing here touches the network except the workers loading Pyodide from our origin.
import { message } from "./messages.js";
import { sniff } from "./sniff.js";

const WORKER_URL = new URL("./hash-worker.js", import.meta.url);

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

export function defaultWorkerCount() {
  return Math.max(1, Math.min(4, navigator.hardwareConcurrency || 2));
}

export class HashPool {
  /**
   * workers: how many hashing workers (each runs its own Pyodide).
   * splitPixels: photos at least this large are hashed in row bands across all workers.
   * onCspViolation: called with what a worker reports from its securitypolicyviolation events.
   */
  constructor({ workers = defaultWorkerCount(), splitPixels = 1_000_000, onCspViolation = () => {} } = {}) {
    this.size = workers;
    this.splitPixels = splitPixels;
    this.onCspViolation = onCspViolation;
    this.slots = [];
    this.queue = [];
    this.calls = new Map();
    this.nextId = 1;
    this.closed = false;
    for (let i = 0; i < workers; i++) this.slots.push(this.#spawn(i));
    const started = performance.now();
    this.ready = Promise.all(this.slots.map((slot) => this.#send(slot, { op: "init" }))).then((boots) => ({
      readyMs: performance.now() - started,
      boot: boots.map((b) => ({ ms: b.bootMs, ...b.stages })),
      pyodide: boots[0].pyodide,
      workers: this.size,
    }));
    this.ready.catch(() => {}); // callers see the rejection; no unhandled-rejection noise
  }

  #spawn(index) {
    const worker = new Worker(WORKER_URL, { type: "module", name: `kalkan-hash-${index}` });
    const slot = { index, worker, busy: true, current: null };
    worker.onmessage = ({ data }) => this.#receive(slot, data);
    worker.onerror = (event) => {
      // The worker died (e.g. out of memory): fail its call, replace it, go on with the others.
      event.preventDefault?.();
      const call = slot.current && this.calls.get(slot.current);
      if (call) {
        this.calls.delete(slot.current);
        call.reject(new HashError("internal", {}, `worker failed: ${event.message ?? "error"}`));
      }
      worker.terminate();
      if (!this.closed && slot.booted) { // never respawn a worker that could not even start
        const fresh = this.#spawn(index);
        this.slots[index] = fresh;
        this.#send(fresh, { op: "init" }).catch(() => {});
      }
    };
    return slot;
  }

  #receive(slot, data) {
    if (data.cspViolation) {
      this.onCspViolation(data.cspViolation);
      return;
    }
    const call = this.calls.get(data.id);
    if (!call) return;
    if (data.progress) {
      call.onProgress?.(data.progress);
      return;
    }
    this.calls.delete(data.id);
    slot.booted ||= data.ok;
    slot.busy = false;
    slot.current = null;
    if (data.ok) call.resolve(data.result);
    else call.reject(new HashError(data.error.code, data.error.values, data.error.detail));
    this.#pump();
  }

  #send(slot, { op, payload = {}, transfer = [], onProgress }) {
    const id = this.nextId++;
    slot.busy = true;
    slot.current = id;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject, onProgress });
      slot.worker.postMessage({ id, op, ...payload }, transfer);
    });
  }

  #pump() {
    for (const slot of this.slots) {
      if (!this.queue.length) return;
      if (slot.busy) continue;
      const task = this.queue.shift();
      this.#send(slot, task).then(task.resolve, task.reject);
    }
  }

  /** Runs `op` on the next free worker. */
  run(op, payload = {}, transfer = [], onProgress = undefined) {
    return new Promise((resolve, reject) => {
      this.queue.push({ op, payload, transfer, onProgress, resolve, reject });
      this.#pump();
    });
  }

  /**
   * Fingerprints one File. Resolves to {kind: "image"|"video", format, hashes: [{signal_type,
   * value, quality?, orientation?}], timings}; rejects with a HashError whose code says why
   * (empty, not_image, damaged, unsupported_format, too_small, too_large, read_failed, internal).
   * onProgress gets {stage: "decoding"|"hashing", done?, total?}.
   */
  async hashFile(file, { onProgress = () => {} } = {}) {
    const started = performance.now();
    if (file.size === 0) throw new HashError("empty");
    let head;
    try {
      head = new Uint8Array(await file.slice(0, 64).arrayBuffer());
    } catch (err) {
      throw new HashError("read_failed", {}, String(err));
    }
    const format = sniff(head);
    if (format === "video" || (format === null && file.type.startsWith("video/"))) {
      const { md5 } = await this.run("md5", { file, job: this.nextId++ }, [], onProgress);
      return {
        kind: "video",
        format,
        hashes: [{ signal_type: "md5", value: md5 }],
        timings: { totalMs: performance.now() - started },
      };
    }
    const decoded = await this.run("image", { file, bands: this.size, splitPixels: this.splitPixels }, [], onProgress);
    const hashes = [];
    const timings = { decodeMs: 0, hashMs: 0 };
    for (const variant of decoded.variants) {
      let { hash, quality } = variant;
      timings.decodeMs += variant.decodeMs;
      if (variant.bands) {
        onProgress({ stage: "hashing", orientation: variant.orientation });
        const t0 = performance.now();
        const { width, height } = variant;
        const sums = await Promise.all(variant.bands.map((band) =>
          this.run("sums", { data: band.data, width, height, row_start: band.row_start, row_stop: band.row_stop },
            [band.data.buffer])));
        ({ hash, quality } = await this.run("finish", { bands: sums, width, height }));
        timings.hashMs += performance.now() - t0;
      } else {
        timings.hashMs += variant.hashMs;
      }
      hashes.push({
        signal_type: "pdq", value: hash, quality, orientation: variant.orientation,
        width: variant.width, height: variant.height, bands: variant.bands ? variant.bands.length : 1,
      });
    }
    // A browser that shows the stored pixels as they are gives the same hash twice: keep one.
    const unique = hashes.filter((h, i) => i === 0 || h.value !== hashes[0].value);
    timings.totalMs = performance.now() - started;
    return { kind: "image", format: decoded.format, exifOrientation: decoded.exifOrientation, hashes: unique, timings };
  }

  close() {
    this.closed = true;
    for (const slot of this.slots) slot.worker.terminate();
    for (const call of this.calls.values()) call.reject(new HashError("internal", {}, "closed"));
    this.calls.clear();
  }
}
