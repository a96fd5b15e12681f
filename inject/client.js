// liveserve's browser client, loaded by the tag liveserve injects into every HTML page it serves.
// It must work under a `script-src 'self'` Content-Security-Policy, so it is a same-origin file,
// never inline code.
(() => {
  "use strict";
  // The tag can appear twice (a page that includes a fragment that also got it): start once.
  if (window.__liveserve) return;
  const script = document.currentScript;
  window.__liveserve = {
    // The URL path this page was served for, as the server saw it (index files, 404 pages).
    path: script && script.dataset.path,
  };
})();
