// The person's flow at /start (server/templates/start.html): eligibility, choosing and
// fingerprinting files, consent, the case number and PIN, what next. One page; each step is a
// <section data-step>, shown one at a time, with a history entry so the browser's back button
// goes back a step. Every string comes from the server (server/i18n.py) in the page's language.
// Two modes: opening a new case (the default), and adding to an existing one (?mode=add, linked
// from the case page): the same eligibility, files and consent steps, then the case number and PIN
// are asked for on the send step and the result is what was added. The only request this script
// makes is POST /api/cases or POST /api/cases/hashes, with hashes (flow-submit.js).
import { HashPool } from "./hasher.js";
import { FileList, MAX_HASHES_PER_CASE_REQUEST } from "./flow-files.js";
import { addToCase, caseRequest, codesText, forget, openCase } from "./flow-submit.js";
import { normaliseCaseNumber, normalisePin } from "./case-codes.js";

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

// The mode, like ref, from this page's own URL: the offline cache keys pages by path and language.
const MODE = new URLSearchParams(location.search).get("mode") === "add" ? "add" : "new";
root.dataset.mode = MODE;
for (const element of root.querySelectorAll("[data-only]")) element.hidden = element.dataset.only !== MODE;

/** Sets `name` to `value` in each link's query, keeping the rest of it. */
function setParam(links, name, value) {
  for (const link of links) {
    if (!link) continue;
    const url = new URL(link.href);
    url.searchParams.set(name, value);
    link.href = url.pathname + url.search;
  }
}

if (MODE === "add") setParam([document.querySelector("header a.lang")], "mode", "add"); // the language switch keeps the mode

if (ref) {
  root.dataset.ref = ref;
  setParam([$("[data-testid=start-new-case]")], "ref", ref);
  $("[data-testid=consent-ref]").textContent = ref;
  setParam(document.querySelectorAll("header a.brand, header a.lang"), "ref", ref); // kept on a language switch
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
// request: the new case's body; hashes: what is added in add mode; case / added: the answer.
const state = { step: null, eligible: false, request: null, hashes: [], case: null, added: null, sending: false };

/** The step the person may see when asking for `step` (no skipping ahead, no way back once the
 * case is open: the case number and PIN stay on screen). */
function allowed(step) {
  if (!steps.has(step)) step = "eligibility";
  if (state.case) return step === "done" ? "done" : "result";
  if (state.added) return "added"; // what was added stays on screen: nothing is sent twice
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
const startNewLink = $("[data-testid=start-new-case]");
const caseNumberInput = $("[data-testid=add-case-number]");
const pinInput = $("[data-testid=add-case-pin]");
const VPDQ_SHOWN = 96; // a video's vPDQ is one line per frame: the list shows its start, the exact message all of it

function renderConsent() {
  state.hashes = files.sendableHashes();
  // Adding stores nothing in this tab: no idempotency key (adding twice adds nothing), no PIN.
  state.request = MODE === "new" ? caseRequest({ hashes: state.hashes, language, ref }) : null;
  const list = $("[data-testid=consent-hashes]", consentStep);
  list.replaceChildren();
  for (const hash of state.hashes) {
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
  showExactBody();
  submitError.hidden = true;
  submitButton.hidden = false;
}

/** While a request is out: tests (and anyone curious) can see when its answer has been handled. */
function setSending(value) {
  state.sending = value;
  root.dataset.sending = String(value);
}

function showExactBody() {
  const body = MODE === "new" ? state.request : shownAddBody();
  $("[data-testid=consent-body]", consentStep).textContent = JSON.stringify(body, null, 1);
}

/** Shows `message` above the send button; `kind` says what answers it (consent: ticking the box).
 * `retry`: the only way on is Try again (the same request); `startNew`: the link to a new case. */
function showSubmitError(message, { retry, kind = "failure", startNew = false }) {
  $("[data-message]", submitError).textContent = message;
  retryButton.hidden = !retry;
  startNewLink.hidden = !startNew;
  submitButton.hidden = retry; // one button that sends: Try again (the same request, the same key)
  submitError.dataset.kind = kind;
  submitError.hidden = false;
}

function failureMessage(outcome) {
  if (outcome.kind === "network") return t("flow_err_network");
  if (outcome.kind === "rate_limited") return t("flow_err_rate_limited");
  if (outcome.kind === "server") return t("flow_err_server");
  return t("flow_err_rejected", { detail: outcome.field ? `${outcome.code}: ${outcome.field}` : outcome.code });
}

/** Refuses to send without consent (says so and moves there); else marks the page as sending. */
function beginSending() {
  if (!consentBox.checked) {
    showSubmitError(t("flow_consent_need"), { retry: false, kind: "consent" });
    consentBox.focus();
    return false;
  }
  setSending(true);
  submitButton.disabled = true;
  retryButton.disabled = true;
  sending.textContent = t("flow_submitting");
  return true;
}

async function submit() {
  if (state.sending) return;
  if (MODE === "add") return submitAdd();
  if (!beginSending()) return;
  const outcome = await openCase(state.request); // the same body and key on every retry
  setSending(false);
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
  if (consentBox.checked && submitError.dataset.kind === "consent") submitError.hidden = true; // answered
});
submitButton.addEventListener("click", submit);
retryButton.addEventListener("click", submit);

// --- adding to an existing case ----------------------------------------------------------------

const PIN_SHOWN = "•••••-•••••"; // the exact body on screen hides the PIN from anyone looking on
let credentials = null; // {case_number, pin} once added: in memory only, for "Back to your case"

/** The body that will be POSTed to /api/cases/hashes, as typed so far, with the PIN hidden. */
function shownAddBody() {
  const caseNumber = normaliseCaseNumber(caseNumberInput.value) ?? caseNumberInput.value.trim();
  return { case_number: caseNumber, pin: PIN_SHOWN, hashes: state.hashes };
}

function markInvalid(...fields) {
  for (const field of [caseNumberInput, pinInput]) {
    if (fields.includes(field)) field.setAttribute("aria-invalid", "true");
    else field.removeAttribute("aria-invalid");
  }
}

for (const field of [caseNumberInput, pinInput]) {
  field.addEventListener("input", () => {
    field.removeAttribute("aria-invalid");
    if (field === caseNumberInput) showExactBody();
  });
  field.addEventListener("change", () => { // leaving the field: show what was understood
    const canonical = (field === caseNumberInput ? normaliseCaseNumber : normalisePin)(field.value);
    if (canonical) field.value = canonical;
  });
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter") submit();
  });
}

/** "in 60 minutes" / "60 dakika sonra", in rounded-up minutes, hours or days. */
function retryWhen(seconds) {
  const format = new Intl.RelativeTimeFormat(language === "tr" ? "tr-TR" : "en-GB", { numeric: "always" });
  const minutes = Math.max(1, Math.ceil((seconds || 60) / 60));
  if (minutes < 90) return format.format(minutes, "minute");
  const hours = Math.ceil(minutes / 60);
  if (hours < 48) return format.format(hours, "hour");
  return format.format(Math.ceil(hours / 24), "day");
}

/** What a failed add says, and what the person can do from here. */
function addFailure(outcome) {
  if (outcome.kind === "network") return { message: t("flow_add_err_network"), retry: true };
  if (outcome.kind === "rate_limited") return { message: t("flow_err_rate_limited"), retry: true };
  if (outcome.kind === "server") return { message: t("flow_add_err_server"), retry: true };
  if (outcome.kind === "locked") return { message: t("flow_add_err_locked", { when: retryWhen(outcome.retryAfter) }) };
  switch (outcome.code) {
    case "case_or_pin_wrong": // unknown number or wrong PIN: the API cannot tell, nor can we
      return { message: t("err_case_or_pin_wrong"), fields: [caseNumberInput, pinInput] };
    case "case_withdrawn":
      return { message: t("flow_add_err_withdrawn"), startNew: true };
    case "case_full":
      return { message: t("flow_add_err_full"), startNew: true };
    default:
      if (outcome.field === "case_number") return { message: t("flow_add_need_case_number"), fields: [caseNumberInput] };
      if (outcome.field === "pin") return { message: t("flow_add_need_pin"), fields: [pinInput] };
      return { message: failureMessage(outcome) };
  }
}

async function submitAdd() {
  const caseNumber = normaliseCaseNumber(caseNumberInput.value);
  const pin = normalisePin(pinInput.value);
  const refuse = (message, field) => {
    markInvalid(field);
    showSubmitError(message, { retry: false, kind: "credentials" });
    field.focus();
  };
  if (!caseNumber) return refuse(t("flow_add_need_case_number"), caseNumberInput);
  if (!pin) return refuse(t("flow_add_need_pin"), pinInput);
  markInvalid();
  caseNumberInput.value = caseNumber;
  pinInput.value = pin;
  if (!beginSending()) return;
  const outcome = await addToCase({ case_number: caseNumber, pin, hashes: state.hashes });
  setSending(false);
  submitButton.disabled = false;
  retryButton.disabled = false;
  sending.textContent = "";
  if (outcome.ok) {
    credentials = { case_number: caseNumber, pin };
    caseNumberInput.value = "";
    pinInput.value = "";
    showAdded(outcome.result);
    return;
  }
  const failure = addFailure(outcome);
  markInvalid(...(failure.fields ?? []));
  showSubmitError(failure.message, { retry: Boolean(failure.retry), startNew: Boolean(failure.startNew) });
  if (failure.retry) retryButton.focus();
  else if (failure.startNew) startNewLink.focus();
  else if (failure.fields) failure.fields[0].focus();
  else submitButton.focus();
}

const addedStep = steps.get("added");

function showAdded(result) {
  state.added = result;
  const already = Math.max(0, state.hashes.length - result.added); // e.g. sent before, or a retry
  $("[data-testid=added-count]", addedStep).textContent = String(result.added);
  $("[data-testid=added-already]", addedStep).textContent = String(already);
  for (const row of addedStep.querySelectorAll("[data-already]")) row.hidden = already === 0;
  $("[data-testid=added-total]", addedStep).textContent = String(result.hash_count);
  files.releaseThumbnails();
  pool?.close(); // nothing more to fingerprint here
  show("added");
}

// Back to the case page: a POST with the number and PIN in its body, filled in only now.
$("[data-case-form]", addedStep).addEventListener("submit", (event) => {
  const form = event.currentTarget;
  if (!credentials) {
    event.preventDefault();
    return;
  }
  form.elements.case_number.value = credentials.case_number;
  form.elements.pin.value = credentials.pin;
});

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

// The quick exit (quick-exit.js) is leaving: no question asked, and nothing of the person's kept
// in this page's memory on the way out (the tab's storage it clears itself).
document.addEventListener("kalkan:quick-exit", () => {
  guardLeaving = false;
  forget();
  credentials = null;
  state.case = null;
  files.releaseThumbnails();
  pool?.close();
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
