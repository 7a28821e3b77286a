// The files step of the person's flow: the chosen photos and videos, each with a thumbnail made
// on this device (an object URL, revoked when the file is removed), its progress, its result or
// a plain error, and a remove button. Hashing runs in the HashPool's workers; nothing here
// touches the network.

export const MIN_PDQ_QUALITY = 50; // the server refuses less: too little detail to be recognised

/** Whether the server takes a PDQ hash: detailed enough, and one the registry accepts (the
 * worker asks it: pyhash/signals.py). Otherwise the photo is "not detailed enough". */
function sendable(pdq) {
  return pdq.quality >= MIN_PDQ_QUALITY && pdq.acceptable !== false;
}
export const MAX_HASHES_PER_CASE_REQUEST = 500; // docs/api.md: over 500 hashes in a request is refused

/** The fields the API takes for a hash (hasher.js adds orientation, sizes, frame counts). */
function apiHash(hash) {
  const sent = { signal_type: hash.signal_type, value: hash.value };
  if (hash.signal_type === "pdq") sent.quality = hash.quality;
  return sent;
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text) node.textContent = text;
  return node;
}

export class FileList {
  /**
   * pool: a HashPool (possibly still booting). list: the <ul> to fill. t(key, values): the page's
   * strings. onChange(): called when a file is added, finishes, fails or is removed.
   * announce(text): says something in the step's polite live region.
   */
  constructor({ pool, list, language, t, onChange, announce, focusAfterRemoval }) {
    this.pool = pool;
    this.list = list;
    this.language = language;
    this.t = t;
    this.onChange = onChange;
    this.announce = announce;
    this.focusAfterRemoval = focusAfterRemoval;
    this.items = [];
    this.nextId = 1;
  }

  add(files) {
    for (const file of files) this.#start(file);
    this.onChange();
  }

  #start(file) {
    const item = { id: this.nextId++, file, state: "queued", result: null, error: null, url: null,
      controller: new AbortController() };
    const isVideo = file.type.startsWith("video/");
    const node = element("li", { class: "file-item", "data-testid": "file-item", "data-state": "queued",
      "data-name": file.name, "data-kind": isVideo ? "video" : "image" });
    if (isVideo) {
      const tile = element("span", { class: "thumb thumb-video", "aria-hidden": "true" }, this.t("flow_file_video"));
      node.append(tile);
    } else {
      // The browser decodes this for display only; a format it cannot show gets the plain tile.
      item.url = URL.createObjectURL(file);
      const img = element("img", { class: "thumb", alt: "", src: item.url, decoding: "async", "data-testid": "thumb" });
      img.addEventListener("error", () => img.replaceWith(element("span", { class: "thumb thumb-blank", "aria-hidden": "true" })), { once: true });
      node.append(img);
    }
    const body = element("div", { class: "file-body" });
    body.append(element("p", { class: "file-name" }, file.name));
    const progress = element("progress", { max: "1", "aria-label": this.t("flow_files_progress_label", { name: file.name }) });
    const status = element("p", { class: "file-status", "data-testid": "file-status" }, this.t("flow_file_queued"));
    body.append(progress, status);
    node.append(body);
    const remove = element("button", { type: "button", class: "button-secondary remove", "data-testid": "remove-file",
      "aria-label": this.t("flow_files_remove_label", { name: file.name }) }, this.t("flow_files_remove"));
    remove.addEventListener("click", () => this.remove(item, { byPerson: true }));
    node.append(remove);
    item.node = node;
    item.progress = progress;
    item.status = status;
    this.items.push(item);
    this.list.append(node);

    this.pool.hashFile(file, {
      signal: item.controller.signal,
      onProgress: (p) => {
        if (item.removed) return;
        this.#setState(item, p.stage === "decoding" ? "decoding" : "hashing");
        if (p.total) progress.value = p.done / p.total;
      },
    }).then(
      (result) => this.#finished(item, result),
      (error) => this.#failed(item, error),
    );
  }

  #setState(item, state) {
    if (item.state === state) return;
    item.state = state;
    item.node.dataset.state = state;
    item.status.textContent = this.t(`flow_file_${state}`);
  }

  #finished(item, result) {
    if (item.removed) return;
    item.result = result;
    item.progress.value = 1;
    item.progress.remove();
    this.#setState(item, "done");
    item.node.dataset.kind = result.kind;
    const photo = result.hashes.find((h) => h.signal_type === "pdq" && h.orientation !== "raw")
      ?? result.hashes.find((h) => h.signal_type === "pdq");
    if (result.kind === "image" && photo && !sendable(photo)) {
      item.lowQuality = true;
      item.node.dataset.lowQuality = "true";
      item.status.textContent = this.t("flow_file_not_sent");
      item.node.dataset.quality = String(photo.quality);
      item.node.append(element("p", { class: "file-message file-warning", "data-testid": "file-warning" }, this.t("flow_file_low_quality")));
    }
    this.onChange();
  }

  #failed(item, error) {
    if (item.removed || error?.code === "cancelled") return;
    item.error = error;
    item.progress.remove();
    this.#setState(item, "error");
    item.status.textContent = "";
    const code = error?.code ?? "internal";
    const text = typeof error?.text === "function" ? error.text(this.language) : this.t("flow_engine_failed");
    item.node.append(element("p", { class: "file-message error", "data-testid": "file-error", "data-code": code }, text));
    this.onChange();
  }

  /** Takes the file off the list: stops its hashing, forgets its hashes, frees its thumbnail. */
  remove(item, { byPerson = false } = {}) {
    if (item.removed) return;
    item.removed = true;
    item.controller.abort();
    if (item.url) URL.revokeObjectURL(item.url);
    item.url = null;
    const index = this.items.indexOf(item);
    this.items.splice(index, 1);
    item.node.remove();
    if (byPerson) {
      this.announce(this.t("flow_removed", { name: item.file.name }));
      const next = this.items[index] ?? this.items[index - 1];
      this.focusAfterRemoval(next ? next.node.querySelector("[data-testid=remove-file]") : null);
    }
    this.onChange();
  }

  /** Stops every file still being fingerprinted and takes it off the list; returns how many. */
  cancelPending() {
    const pending = this.items.filter((item) => this.#isPending(item));
    for (const item of pending) this.remove(item);
    return pending.length;
  }

  /** Frees every thumbnail (the case is open: the list is not shown again). */
  releaseThumbnails() {
    for (const item of this.items) {
      if (item.url) URL.revokeObjectURL(item.url);
      item.url = null;
    }
  }

  /** Marks every unfinished file as failed (the hashing engine could not start). */
  failPending(error) {
    for (const item of this.items.filter((i) => this.#isPending(i))) this.#failed(item, error);
  }

  #isPending(item) {
    return !item.result && !item.error;
  }

  get counts() {
    const total = this.items.length;
    const pending = this.items.filter((item) => this.#isPending(item)).length;
    return { total, pending, done: total - pending };
  }

  /** The hashes to send, each once, in the order of the files: {signal_type, value, quality?}. */
  sendableHashes() {
    const seen = new Set();
    const hashes = [];
    for (const item of this.items) {
      if (!item.result) continue;
      for (const hash of item.result.hashes) {
        if (hash.signal_type === "pdq" && !sendable(hash)) continue;
        const key = `${hash.signal_type}:${hash.value}`;
        if (seen.has(key)) continue;
        seen.add(key);
        hashes.push(apiHash(hash));
      }
    }
    return hashes;
  }
}
