// Registers the service worker (/sw.js, server/offline.py) that keeps the hashing pages working
// offline after this first visit. Registration waits for the page's load event so that the
// worker's precaching reads the files this visit already downloaded from the HTTP cache instead
// of competing with the page for them. Sets <html data-offline="ready"> once the worker is
// active (tests and the flow can tell the page will work offline from then on).
//
// The quick exit (quick-exit.js) unregisters every worker of this origin; one this page is still
// registering may not be among them yet, so this page undoes its own, and registers none after.
if ("serviceWorker" in navigator && window.isSecureContext) {
  let leaving = false;
  let registering = null;
  const register = () => {
    // A page the worker already controls needs no registration: the browser re-checks /sw.js
    // for a new deployment after each navigation anyway (and register() would check again).
    if (leaving || navigator.serviceWorker.controller) return;
    // "all": the browser's update checks may use its HTTP cache, where /sw.js lives for up to a
    // day (server/offline.py), so a repeat visit within a day sends no request at all.
    registering = navigator.serviceWorker.register("/sw.js", { scope: "/", updateViaCache: "all" }).then(
      (registration) => (leaving ? registration.unregister() : undefined),
      (err) => {
        document.documentElement.dataset.offline = "unavailable";
        console.debug("offline use unavailable:", err);
      },
    );
  };
  if (document.readyState === "complete") register();
  else window.addEventListener("load", register, { once: true });
  navigator.serviceWorker.ready.then(() => {
    if (!leaving) document.documentElement.dataset.offline = "ready";
  });
  document.addEventListener("kalkan:quick-exit", (event) => {
    leaving = true;
    if (registering) event.detail.waitUntil(registering);
  });
}
