// The quick exit: the red button in every page's header (server/templates/base.html), and Escape
// pressed twice within ESCAPE_WINDOW_MS. It is for someone who must hide at once that they were
// here (someone walks in, or takes the phone). Without JavaScript the button is a plain link to
// the same neutral site; this module, loaded first on every page, makes it leave without a trace.
//
// Leaving, in this order: each step matters more than the next, and none can stop the ones after.
//  1. The page's own scripts hear EXIT_EVENT: flow-page.js drops its "leave this page?" guard
//     (the quick exit never asks) and its files, offline.js undoes a registration under way. They
//     may hand over promises to wait for, through event.detail.waitUntil.
//  2. The page blanks itself: nothing to see while the tab moves on.
//  3. The neutral site opens in a new tab where the browser allows it. A popup blocker may refuse
//     (window.open returns null or throws): this tab leaves all the same.
//  4. What Kalkan kept in this browser is deleted: this tab's sessionStorage (the flow's pending
//     idempotency key, "kalkan.pendingCase"), localStorage, every Cache Storage cache (the offline
//     copy of the pages) and the service worker registration. Waited for at most
//     CLEANUP_BUDGET_MS: the screen is already blank, and leaving must not hang on storage.
//  5. location.replace: the neutral site takes this page's place in the tab's history, so Back
//     leads to the page before, never to this one.
//
// The pages further back in the history (the case page, the flow's earlier steps, the lookup form
// with the PIN typed in) are the other half; whoever presses Back must find an empty form there,
// never the person's case, answers, files or codes:
//  - Each Kalkan page blanks itself on pagehide, so the copy a back/forward cache keeps holds
//    nothing (no-store does not keep a page out of it everywhere: Chrome is letting no-store pages
//    in when no cookie changed, and Kalkan sets none). A copy shown again from that cache
//    (pageshow, persisted) loads itself afresh from the server, as on a first visit.
//  - An answer to a POST (the case page) turns its history entry into a GET of its own page
//    (<html data-fresh-url>, server/pages.py), so the browser no longer keeps the form with the
//    case number and PIN to send again.
//  - The flow's fields carry autocomplete="off" (server/templates/start.html): when Back loads a
//    page again, the browser has no answers of the last visit to fill in.

const EXIT_EVENT = "kalkan:quick-exit";
const ESCAPE_WINDOW_MS = 1500; // two presses closer than this are one deliberate gesture
const CLEANUP_BUDGET_MS = 500; // 40-100 ms measured on a busy test machine; a slow phone gets 5x that, no more
const WORKER_MESSAGE = { type: "kalkan-quick-exit" }; // service-worker.js stops precaching on it

const root = document.documentElement;
const button = document.querySelector("[data-quick-exit]");
let leaving = false;

/** Removes everything the page shows (its header too: nothing of Kalkan while the tab moves on). */
function blank() {
  document.body?.replaceChildren();
  document.title = "";
}

function openNeutralTab(destination) {
  try {
    window.open(destination, "_blank", "noopener,noreferrer");
  } catch {
    // Refused: this tab leaves all the same.
  }
}

function forgetStorage() {
  for (const name of ["sessionStorage", "localStorage"]) {
    try {
      window[name].clear(); // this origin is Kalkan's: everything in it is ours
    } catch {
      // Unavailable here (some private modes): then nothing was kept in it either.
    }
  }
}

/** Unregisters every service worker of this origin, after telling each one to stop storing. */
async function forgetServiceWorkers() {
  if (!("serviceWorker" in navigator)) return;
  const registrations = await navigator.serviceWorker.getRegistrations();
  await Promise.allSettled(registrations.map((registration) => {
    // A worker still installing is precaching megabytes: told, it stops at once instead of writing
    // on after us (and deletes the caches itself, from its own lifetime, should this page be gone).
    for (const worker of [registration.installing, registration.waiting, registration.active]) {
      worker?.postMessage(WORKER_MESSAGE);
    }
    return registration.unregister();
  }));
}

async function forgetCaches() {
  if (!("caches" in self)) return; // not a secure context: no Cache Storage, nothing in it
  const names = await caches.keys();
  await Promise.allSettled(names.map((name) => caches.delete(name)));
}

/** Leaves for `destination` the quick way (see the top of this file); once, however often pressed. */
function quickExit(destination = button?.href) {
  if (leaving || !destination) return;
  leaving = true;
  root.dataset.quickExitState = "leaving";
  let left = false;
  const leave = () => {
    if (left) return;
    left = true;
    location.replace(destination);
  };
  setTimeout(leave, CLEANUP_BUDGET_MS); // first: whatever goes wrong below, the tab still leaves
  const pending = [];
  document.dispatchEvent(new CustomEvent(EXIT_EVENT, { detail: { waitUntil: (promise) => pending.push(promise) } }));
  blank();
  openNeutralTab(destination);
  forgetStorage();
  // Side by side: unregistering may wait until a worker's install has ended (forgetServiceWorkers'
  // message ends a precache early), and the caches must not wait for that.
  pending.push(forgetServiceWorkers(), forgetCaches());
  Promise.allSettled(pending).then(leave);
}

if (button) {
  button.addEventListener("click", (event) => {
    event.preventDefault(); // the link's own navigation would add a history entry Back undoes
    quickExit();
  });
  let lastEscape = -Infinity;
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.repeat || event.isComposing) return;
    if (event.timeStamp - lastEscape <= ESCAPE_WINDOW_MS) quickExit();
    else lastEscape = event.timeStamp;
  }, { capture: true }); // before any handler inside the page could stop it
}

// Every page, whoever leaves it and however: the copy a back/forward cache keeps is blank, and a
// copy shown again loads afresh. Blanking on pagehide costs nothing: the next page is already
// taking this one's place on screen.
window.addEventListener("pagehide", blank);
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  blank(); // in case a browser restored it without pagehide having run
  location.replace(location.href); // a POST answer's URL is its GET page by now (below)
});

// An answer to a POST (the case page): the browser keeps the form it answered (the case number and
// PIN) in this history entry, to send again on Back or Reload ("Confirm form resubmission"). A new
// URL for the entry makes it a plain GET of that page (the lookup form): the form is dropped from
// the history, and Reload shows the lookup form instead of asking to send the PIN again.
if (root.dataset.freshUrl) history.replaceState(history.state, "", root.dataset.freshUrl);

root.dataset.quickExitState = "ready"; // tests, and the stylesheet (the Escape hint needs this script)
