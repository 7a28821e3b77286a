// Sending the flow's hashes. Opening a case: POST /api/cases with the hashes, the page's language,
// the helpline's referral code and a client idempotency key. The key is kept in sessionStorage
// (this tab only) together with the request it belongs to, until the answer is on screen: a retry
// after a dropped response, even after a reload and the same files chosen again, sends the same key
// and so gets the same case number and PIN back instead of opening a second case (docs/api.md).
// Adding to a case: POST /api/cases/hashes with the case number, PIN and hashes. Adding is
// idempotent on the server (a hash already in the case is not added again), so a retry needs no key
// and nothing of it is stored anywhere: the page keeps the request in memory only.

const STORAGE_KEY = "kalkan.pendingCase";
let memoryEntry = null; // where sessionStorage is unavailable (some private modes)

function newKey() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function readEntry() {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    return raw ? JSON.parse(raw) : memoryEntry;
  } catch {
    return memoryEntry;
  }
}

function writeEntry(entry) {
  memoryEntry = entry;
  try {
    if (entry) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(entry));
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // memoryEntry still covers retries within this page
  }
}

/**
 * The exact body to POST: the same hashes, language and ref always get the same key back (until
 * forget()), any change gets a fresh one (a different body under an old key is refused).
 */
export function caseRequest({ hashes, language, ref }) {
  const request = { hashes, language };
  if (ref) request.ref = ref;
  const canonical = JSON.stringify(request);
  const stored = readEntry();
  let key = stored && stored.request === canonical && typeof stored.key === "string" ? stored.key : null;
  if (!key) {
    key = newKey();
    writeEntry({ key, request: canonical });
  }
  return { ...request, idempotency_key: key };
}

/** The answer is on screen: the key has done its job and is not kept. */
export function forget() {
  writeEntry(null);
}

/** POSTs `body` as JSON to our own `path`: {status, answer, headers} or null if no answer came. */
async function postJson(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    return null;
  }
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    // an answer that is not JSON (a proxy's error page) is handled by its status
  }
  return { status: response.status, answer, headers: response.headers };
}

/**
 * Sends the request. Resolves to {ok: true, case: {case_number, pin, status, hash_count}} or
 * {ok: false, kind: "network"|"rate_limited"|"server"|"rejected", code?, field?, retryAfter?}.
 */
export async function openCase(body) {
  const reply = await postJson("/api/cases", body);
  if (!reply) return { ok: false, kind: "network" };
  const { status, answer } = reply;
  if (status === 201 && answer && answer.case_number && answer.pin) return { ok: true, case: answer };
  const error = answer?.error ?? {};
  if (status === 429) return { ok: false, kind: "rate_limited", retryAfter: error.retry_after };
  const failed = failure(status, answer);
  if (failed.code === "idempotency_key_reused") forget(); // a fresh key next time
  return failed;
}

/**
 * Adds hashes to an existing case: body {case_number, pin, hashes}. Resolves to
 * {ok: true, result: {case_number, status, hash_count, added}} or {ok: false, kind:
 * "network"|"locked"|"rate_limited"|"server"|"rejected", code?, field?, retryAfter?}; a rejection's
 * code is the API's (case_or_pin_wrong, case_withdrawn, case_full, invalid_field, ...).
 */
export async function addToCase(body) {
  const reply = await postJson("/api/cases/hashes", body);
  if (!reply) return { ok: false, kind: "network" };
  const { status, answer, headers } = reply;
  if (status === 200 && answer && Number.isInteger(answer.hash_count) && Number.isInteger(answer.added)) {
    return { ok: true, result: answer };
  }
  const error = answer?.error ?? {};
  if (status === 429) {
    const retryAfter = Number(error.retry_after ?? headers.get("Retry-After")) || null;
    return { ok: false, kind: error.code === "locked" ? "locked" : "rate_limited", retryAfter };
  }
  return failure(status, answer);
}

/** Any other answer: the server's trouble (5xx, or no JSON), or a rejection with the API's code
 * and field. */
function failure(status, answer) {
  if (status >= 500 || !answer) return { ok: false, kind: "server" };
  const error = answer.error ?? {};
  return { ok: false, kind: "rejected", code: error.code ?? `http_${status}`, field: error.field };
}

/** The text file the person may download: made here, from what is on screen. */
export function codesText({ caseNumber, pin, caseUrl, t }) {
  return [
    t("site_name"),
    "",
    `${t("case_number")}: ${caseNumber}`,
    `${t("pin")}: ${pin}`,
    "",
    t("flow_result_how_to_use", { url: caseUrl }),
    t("flow_result_warning"),
    t("flow_result_keep_safe"),
    "",
    t("support"),
    "",
  ].join("\r\n"); // CRLF: Windows' Notepad shows the lines too
}
