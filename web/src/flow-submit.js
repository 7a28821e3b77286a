// Opening the case: POST /api/cases with the hashes, the page's language, the helpline's
// referral code and a client idempotency key. The key is kept in sessionStorage (this tab only)
// together with the request it belongs to, until the answer is on screen: a retry after a
// dropped response, even after a reload and the same files chosen again, sends the same key and
// so gets the same case number and PIN back instead of opening a second case (docs/api.md).

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

/**
 * Sends the request. Resolves to {ok: true, case: {case_number, pin, status, hash_count}} or
 * {ok: false, kind: "network"|"rate_limited"|"server"|"rejected", code?, field?, retryAfter?}.
 */
export async function openCase(body) {
  let response;
  try {
    response = await fetch("/api/cases", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    return { ok: false, kind: "network" };
  }
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    // an answer that is not JSON (a proxy's error page) is handled by its status below
  }
  if (response.status === 201 && answer && answer.case_number && answer.pin) return { ok: true, case: answer };
  const error = answer?.error ?? {};
  if (response.status === 429) return { ok: false, kind: "rate_limited", retryAfter: error.retry_after };
  if (response.status >= 500 || !answer) return { ok: false, kind: "server" };
  if (error.code === "idempotency_key_reused") forget(); // a fresh key next time
  return { ok: false, kind: "rejected", code: error.code ?? `http_${response.status}`, field: error.field };
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
