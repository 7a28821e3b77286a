// The person's flow at /start (server/templates/start.html): eligibility, choosing and
// fingerprinting files, consent, the case number and PIN, what next. One page; each step is a
// <section data-step>, shown one at a time, with a history entry so the browser's back button
// goes back a step. Every string comes from the server (server/i18n.py) in the page's language.
// The only request this script makes is POST /api/cases, with hashes (flow-submit.js).
import { HashPool } from "./hasher.js";
import { FileList, MAX_HASHES_PER_CASE_REQUEST } from "./flow-files.js";
import { caseRequest, codesText, forget, openCase } from "./flow-submit.js";

const root = document.querySelector("[data-kalkan-flow]");
const TEXTS = JSON.parse(document.getElementById("flow-texts").textContent);
const language = root.dataset.lang === "en" ? "en" : "tr";
// The helpline's referral code: from this page's own URL (a page served from the offline cache
// was rendered for another URL), else as the server rendered it; only what the API accepts.
const REF = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const ref = [new URLSearchParams(location.search).get("ref"), root.dataset.ref].find((v) => v && REF.test(v)) ?? null;

/** The page's string `key` with {placeholders} filled from `values`. */
function t(key, values = {}) {
  const template = TEXTS[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

function $(selector, within = root) {
  return within.querySelector(selector);
}

if (ref) {
  root.dataset.ref = ref;
  $("[data-testid=consent-ref]").textContent = ref;
  for (const link of document.querySelectorAll("header a.brand, header a.lang")) { // keep it on a language switch
    const url = new URL(link.href);
    url.searchParams.set("ref", ref);
    link.href = url.pathname + url.search;
  }
}

// Tests (and anyone curious) can see that nothing was blocked by the CSP, here or in the workers.
let cspViolations = 0;
function countCspViolation() {
  cspViolations += 1;
  root.dataset.cspViolations = String(cspViolations);
}
document.addEventListener("securitypolicyviolation", countCspViolation);
root.dataset.cspViolations = "0";

// --- steps and history -------------------------------------------------------------------------

const steps = new Map([...root.querySelectorAll("[data-step]")].map((section) => [section.dataset.step, section]));
const state = { step: null, eligible: false, request: null, case: null, sending: false };

/** The step the person may see when asking for `step` (no skipping ahead, no way back once the
 * case is open: the case number and PIN stay on screen). */
function allowed(step) {
  if (!steps.has(step)) step = "eligibility";
  if (state.case) return step === "done" ? "done" : "result";
  if (step === "minor" || step === "eligibility") return step;
  if (!state.eligible) return "eligibility";
  if (step === "files") return step;
  return readyToSend() ? "consent" : "files";
}

function show(requested, { push = true, focus = true } = {}) {
  const step = allowed(requested);
  if (step === "consent") renderConsent();
  for (const [name, section] of steps) section.hidden = name !== step;
  state.step = step;
  root.dataset.currentStep = step;
  document.body.classList.toggle("printing-codes", step === "result");
  const heading = $("h1", steps.get(step));
  document.title = `${heading.textContent} · ${t("site_name")}`;
  if (push) history.pushState({ kalkanStep: step }, "");
  else history.replaceState({ kalkanStep: step }, "");
  if (focus) {
    window.scrollTo(0, 0);
    heading.focus(); // screen readers read the new step's title; Tab goes on from there
  }
}

window.addEventListener("popstate", (event) => {
  show(event.state?.kalkanStep ?? "eligibility", { push: false });
});

for (const button of root.querySelectorAll("[data-back]")) {
  button.addEventListener("click", () => history.back());
}

// --- eligibility -------------------------------------------------------------------------------

const eligibility = $("[data-eligibility]");
const eligibilityError = $("[data-testid=eligibility-error]");

function refuse(message, field) {
  eligibilityError.textContent = message;
  eligibilityError.hidden = false;
  for (const input of eligibility.querySelectorAll("input")) input.removeAttribute("aria-invalid");
  field.setAttribute("aria-invalid", "true");
  field.focus();
}

eligibility.addEventListener("submit", (event) => {
  event.preventDefault();
  const age = eligibility.elements.age.value;
  if (!age) return refuse(t("flow_elig_need_age"), $("[data-testid=age-adult]"));
  eligibilityError.hidden = true;
  for (const input of eligibility.querySelectorAll("input")) input.removeAttribute("aria-invalid");
  if (age === "minor") {
    state.eligible = false;
    return show("minor");
  }
  if (!eligibility.elements.in_images.checked) return refuse(t("flow_elig_need_self"), eligibility.elements.in_images);
  if (!eligibility.elements.intimate.checked) return refuse(t("flow_elig_need_intimate"), eligibility.elements.intimate);
  state.eligible = true;
  startEngine();
  return show("files");
});

// --- files -------------------------------------------------------------------------------------

const filesStep = steps.get("files");
const input = $("[data-testid=file-input]");
const summary = $("[data-testid=files-summary]");
const engineStatus = $("[data-testid=engine-status]");
const nextFromFiles = $("[data-testid=next]", filesStep);
const cancelButton = $("[data-testid=cancel-hashing]");
let engineFailed = false;

// The workers boot Pyodide (a few seconds) from the moment the person is through eligibility, while
// they read the files step and open their gallery; someone routed elsewhere never loads it.
let pool = null;
const lazyPool = {
  hashFile: (file, options) => startEngine().hashFile(file, options),
};
const files = new FileList({
  pool: lazyPool,
  list: $("[data-testid=file-list]"),
  language,
  t,
  onChange: filesChanged,
  announce: (text) => {
    $("[data-testid=files-announce]").textContent = text; // its own live region: the summary changes too
  },
  focusAfterRemoval: (next) => (next ?? input).focus(),
});

function startEngine() {
  if (pool) return pool;
  pool = new HashPool({ onCspViolation: countCspViolation });
  pool.ready.then(
    () => {
      engineStatus.dataset.state = "ready";
      engineStatus.textContent = "";
      engineStatus.hidden = true;
    },
    () => {
      engineFailed = true;
      engineStatus.dataset.state = "failed";
      engineStatus.classList.add("error");
      engineStatus.textContent = t("flow_engine_failed");
      files.failPending({ code: "engine_failed" });
    },
  );
  return pool;
}

function readyToSend() {
  const { total, pending } = files.counts;
  const count = files.sendableHashes().length;
  return total > 0 && pending === 0 && count > 0 && count <= MAX_HASHES_PER_CASE_REQUEST;
}

let lastSummary = "";
function filesChanged() {
  if (engineFailed) files.failPending({ code: "engine_failed" });
  const { total, pending, done } = files.counts;
  const count = files.sendableHashes().length;
  root.dataset.pending = String(pending);
  cancelButton.hidden = pending === 0;
  nextFromFiles.disabled = !readyToSend();
  let text = "";
  if (total > 0 && pending > 0) text = t("flow_summary_working", { done, total });
  else if (total > 0 && count === 0) text = t("flow_summary_nothing");
  else if (count > MAX_HASHES_PER_CASE_REQUEST) text = t("flow_summary_too_many", { max: MAX_HASHES_PER_CASE_REQUEST, count });
  else if (total > 0) text = t("flow_summary_done", { count });
  if (text !== lastSummary) summary.textContent = text; // a live region: speak only on change
  lastSummary = text;
}

input.addEventListener("change", () => {
  files.add([...input.files]);
  input.value = ""; // the same file may be chosen again later
});

cancelButton.addEventListener("click", () => {
  const count = files.cancelPending();
  lastSummary = t("flow_cancelled", { count });
  summary.textContent = lastSummary;
  input.focus();
});

nextFromFiles.addEventListener("click", () => show("consent"));

// Drag and drop (desktop): anywhere on the files step. A file dropped elsewhere on the page must
// not make the browser open it in place of the page (the flow would be lost).
const dropZone = $("[data-drop-zone]");
filesStep.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("dragging");
});
filesStep.addEventListener("dragleave", (event) => {
  if (!filesStep.contains(event.relatedTarget)) dropZone.classList.remove("dragging");
});
filesStep.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  if (event.dataTransfer?.files?.length) files.add([...event.dataTransfer.files]);
});
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

// --- consent and sending -----------------------------------------------------------------------

const consentStep = steps.get("consent");
const consentBox = $("[data-testid=consent-confirm]");
const submitButton = $("[data-testid=submit-case]");
const submitError = $("[data-testid=submit-error]");
const retryButton = $("[data-testid=retry-submit]");
const sending = $("[data-testid=sending]");
const VPDQ_SHOWN = 96; // a video's vPDQ is one line per frame: the list shows its start, the exact message all of it

function renderConsent() {
  state.request = caseRequest({ hashes: files.sendableHashes(), language, ref });
  const list = $("[data-testid=consent-hashes]", consentStep);
  list.replaceChildren();
  for (const hash of state.request.hashes) {
    const item = document.createElement("li");
    item.dataset.testid = "consent-hash";
    item.dataset.signalType = hash.signal_type;
    item.dataset.value = hash.value;
    const type = document.createElement("span");
    type.className = "hash-type";
    type.textContent = t(`flow_hash_type_${hash.signal_type}`);
    const value = document.createElement("code");
    value.className = "hash-value";
    value.textContent = hash.value.length > VPDQ_SHOWN ? `${hash.value.slice(0, VPDQ_SHOWN)}…` : hash.value;
    item.append(type, value);
    list.append(item);
  }
  $("[data-testid=consent-body]", consentStep).textContent = JSON.stringify(state.request, null, 1);
  submitError.hidden = true;
  submitButton.hidden = false;
}

function showSubmitError(message, { retry }) {
  $("[data-message]", submitError).textContent = message;
  retryButton.hidden = !retry;
  submitButton.hidden = retry; // one button that sends: Try again (the same request, the same key)
  submitError.hidden = false;
}

function failureMessage(outcome) {
  if (outcome.kind === "network") return t("flow_err_network");
  if (outcome.kind === "rate_limited") return t("flow_err_rate_limited");
  if (outcome.kind === "server") return t("flow_err_server");
  return t("flow_err_rejected", { detail: outcome.field ? `${outcome.code}: ${outcome.field}` : outcome.code });
}

async function submit() {
  if (state.sending) return;
  if (!consentBox.checked) {
    showSubmitError(t("flow_consent_need"), { retry: false });
    consentBox.focus();
    return;
  }
  state.sending = true;
  submitButton.disabled = true;
  retryButton.disabled = true;
  sending.textContent = t("flow_submitting");
  const outcome = await openCase(state.request); // the same body and key on every retry
  state.sending = false;
  submitButton.disabled = false;
  retryButton.disabled = false;
  sending.textContent = "";
  if (outcome.ok) {
    forget();
    showResult(outcome.case);
    return;
  }
  if (outcome.code === "idempotency_key_reused") renderConsent(); // a fresh key, shown as sent
  const retry = outcome.kind !== "rejected" || outcome.code === "idempotency_key_reused";
  showSubmitError(failureMessage(outcome), { retry });
  (retry ? retryButton : submitButton).focus();
}

consentBox.addEventListener("change", () => {
  if (consentBox.checked && retryButton.hidden) submitError.hidden = true; // "tick the box" is answered
});
submitButton.addEventListener("click", submit);
retryButton.addEventListener("click", submit);

// --- the case number and PIN -------------------------------------------------------------------

const resultStep = steps.get("result");
const caseUrl = `${location.origin}/case?lang=${language}`;
const copyStatus = $("[data-testid=copy-status]");

// Leaving while the number and PIN are on screen, before the person said they saved them, loses
// them for good (a reload, the language switch, the site name): the browser asks first. The quick
// exit never asks: getting away at once matters more.
let guardLeaving = false;
window.addEventListener("beforeunload", (event) => {
  if (!guardLeaving) return;
  event.preventDefault();
  event.returnValue = ""; // older browsers want this to ask
});
document.querySelector("[data-testid=quick-exit]")?.addEventListener("click", () => {
  guardLeaving = false;
});

function showResult(opened) {
  state.case = opened;
  guardLeaving = true;
  $("[data-testid=case-number]", resultStep).textContent = opened.case_number;
  $("[data-testid=case-pin]", resultStep).textContent = opened.pin;
  $("[data-how-to-use]", resultStep).textContent = t("flow_result_how_to_use", { url: caseUrl });
  files.releaseThumbnails();
  pool?.close(); // the workers' memory back to the device: nothing more to fingerprint here
  show("result");
}

for (const button of resultStep.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", async () => {
    const shown = $(`[data-testid=${button.dataset.copy}]`, resultStep);
    try {
      await navigator.clipboard.writeText(shown.textContent);
      copyStatus.textContent = t("flow_result_copied");
    } catch {
      // No clipboard here: select the text so the device's own copy works, and say so.
      const range = document.createRange();
      range.selectNodeContents(shown);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      copyStatus.textContent = t("flow_result_copy_failed");
    }
  });
}

$("[data-testid=download-codes]", resultStep).addEventListener("click", () => {
  const { case_number: caseNumber, pin } = state.case;
  const text = codesText({ caseNumber, pin, caseUrl, t });
  const url = URL.createObjectURL(new Blob(["\ufeff", text], { type: "text/plain;charset=utf-8" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = t("flow_textfile_name", { case_number: caseNumber });
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
});

$("[data-testid=print-codes]", resultStep).addEventListener("click", () => window.print());
$("[data-testid=next]", resultStep).addEventListener("click", () => {
  guardLeaving = false;
  show("done");
});

// --- start -------------------------------------------------------------------------------------

show("eligibility", { push: false, focus: false });
root.dataset.ready = "true";
