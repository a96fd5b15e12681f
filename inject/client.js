// liveserve's browser client, loaded by the tag liveserve injects into every HTML page it serves.
// It is a same-origin file, never inline code, so it works under a `script-src 'self'` policy.
//
// Protocol (see DESIGN.md): the server sends JSON messages on /__liveserve/ws.
//   hello  {server, generation}  on every connect
//   reload {generation, paths}   reload the page
//   css    {generation, paths}   swap these stylesheets in place
//
// A page liveserve made because a backend did not answer (502/504) carries
// <meta name="liveserve-upstream-error">: the client asks for the page again now and then, and
// reloads once the backend itself answers.
(() => {
  "use strict";
  // The tag can appear twice (a page that includes a fragment that also got it): start once.
  if (window.__liveserve) return;

  const TAG = "[liveserve]";
  const SCROLL_KEY = "liveserve:scroll:" + location.pathname;
  const RETRY_FIRST_MS = 100;
  const RETRY_MAX_MS = 3000;
  const BACKEND_POLL_MS = 750;
  const UPSTREAM_ERROR_HEADER = "x-liveserve-upstream-error";

  const script = document.currentScript;
  const state = {
    // The URL path this page was served for (its index file, or the missing path of a 404).
    path: script && script.dataset.path,
    // A backend made this page: its stylesheets may live at other URLs than their files.
    proxied: Boolean(script && script.hasAttribute("data-proxied")),
    connected: false,
    // How many times a connection has been made (tests and curious people can watch it).
    connects: 0,
    server: null,
    generation: null,
  };
  window.__liveserve = state;

  let retryMs = RETRY_FIRST_MS;
  let retryTimer = null;
  let warned = false;
  let reloading = false;

  restoreScroll();
  connect();
  waitForBackend();

  function connect() {
    retryTimer = null;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let socket;
    try {
      socket = new WebSocket(scheme + "//" + location.host + "/__liveserve/ws");
    } catch (error) {
      scheduleReconnect();
      return;
    }
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      handle(message);
    };
    socket.onclose = () => {
      const wasConnected = state.connected;
      state.connected = false;
      if (!wasConnected && state.server === null && !warned) {
        warned = true;
        console.warn(TAG, "cannot reach the live reload socket; this page will not reload by itself until it can");
      }
      scheduleReconnect();
    };
  }

  function handle(message) {
    switch (message.type) {
      case "hello": {
        const missed = state.server !== null &&
          (message.server !== state.server || message.generation !== state.generation);
        state.server = message.server;
        state.generation = message.generation;
        state.connected = true;
        state.connects += 1;
        retryMs = RETRY_FIRST_MS;
        if (missed) {
          console.log(TAG, "reconnected after changes; reloading");
          reload();
        }
        break;
      }
      case "reload":
        state.generation = message.generation;
        reload();
        break;
      case "css":
        state.generation = message.generation;
        swapStylesheets(message.paths || []);
        break;
      default:
        // A newer server may send kinds this client does not know: ignore them.
        break;
    }
  }

  function scheduleReconnect() {
    if (retryTimer !== null || reloading) return;
    if (whenVisible(scheduleReconnect)) return;
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  }

  // Retrying in a background tab only burns battery: in a hidden tab, runs `again` once the tab
  // is shown and returns true.
  function whenVisible(again) {
    if (!document.hidden) return false;
    document.addEventListener("visibilitychange", function onVisible() {
      if (document.hidden) return;
      document.removeEventListener("visibilitychange", onVisible);
      again();
    });
    return true;
  }

  // On liveserve's page for a backend that did not answer: reload once the backend answers.
  function waitForBackend() {
    if (!document.querySelector('meta[name="liveserve-upstream-error"]')) return;
    const check = () => {
      if (whenVisible(check)) return;
      fetch(location.href, { method: "HEAD", cache: "no-store" })
        .then((response) => {
          if (response.headers.has(UPSTREAM_ERROR_HEADER)) setTimeout(check, BACKEND_POLL_MS);
          else reload();
        })
        .catch(() => setTimeout(check, BACKEND_POLL_MS));
    };
    setTimeout(check, BACKEND_POLL_MS);
  }

  function reload() {
    if (reloading) return;
    reloading = true;
    try {
      sessionStorage.setItem(SCROLL_KEY, JSON.stringify([window.scrollX, window.scrollY]));
    } catch (error) {
      // Storage can be unavailable (privacy modes); the reload still happens.
    }
    location.reload();
    // Normally the page is gone long before this runs; if a `beforeunload` prompt kept it,
    // go back to listening so the next change still reloads.
    setTimeout(() => {
      reloading = false;
    }, 1000);
  }

  function restoreScroll() {
    let saved = null;
    try {
      saved = sessionStorage.getItem(SCROLL_KEY);
      sessionStorage.removeItem(SCROLL_KEY);
    } catch (error) {
      return;
    }
    if (!saved) return;
    let x, y;
    try {
      [x, y] = JSON.parse(saved);
    } catch (error) {
      return;
    }
    const restore = () => window.scrollTo(x, y);
    if (document.readyState === "complete") restore();
    else window.addEventListener("load", restore, { once: true });
  }

  // Stylesheets -------------------------------------------------------------------------------

  function swapStylesheets(paths) {
    const changed = new Set(paths);
    // Paths name this server's files: a stylesheet from another origin (a CDN) never matches.
    const isChanged = (href) => {
      try {
        const url = new URL(href, location.href);
        return url.origin === location.origin && changed.has(url.pathname);
      } catch (error) {
        return false;
      }
    };
    const links = new Set();
    for (const link of document.querySelectorAll('link[rel~="stylesheet"][href]')) {
      if (link.dataset.liveserveReplaced) continue;
      if (isChanged(link.href)) links.add(link);
    }
    const imports = [];
    for (const sheet of Array.from(document.styleSheets)) {
      // A link already being replaced is on its way out; its successor is the one to look at.
      if (sheet.ownerNode && sheet.ownerNode.dataset && sheet.ownerNode.dataset.liveserveReplaced) continue;
      collectImports(sheet, isChanged, imports, 0);
    }
    if (state.proxied && links.size === 0 && imports.length === 0) {
      // None of this page's stylesheets has a changed path, but a backend may serve the file
      // under another URL. Refreshing every same-origin stylesheet is still no reload.
      for (const link of document.querySelectorAll('link[rel~="stylesheet"][href]')) {
        if (!link.dataset.liveserveReplaced && new URL(link.href, location.href).origin === location.origin) {
          links.add(link);
        }
      }
    }
    for (const rule of imports) {
      // An imported sheet changed: refresh it in the cache, then re-load the sheet that imports
      // it (the <link> that owns it), which then picks up the fresh copy.
      const owner = topSheet(rule.parentStyleSheet).ownerNode;
      if (owner && owner.tagName === "LINK") links.add(owner);
      else replaceImportRule(rule);
    }
    const importedUrls = imports.map((rule) => new URL(rule.href, rule.parentStyleSheet.href || location.href).href);
    Promise.all(importedUrls.map((url) => fetch(url, { cache: "reload" }).catch(() => null))).then(() => {
      for (const link of links) swapLink(link);
    });
  }

  function collectImports(sheet, isChanged, found, depth) {
    if (depth > 8) return;
    let rules;
    try {
      rules = sheet.cssRules;
    } catch (error) {
      return; // a cross-origin sheet cannot be read
    }
    for (const rule of Array.from(rules || [])) {
      if (!(rule instanceof CSSImportRule)) continue;
      const base = sheet.href || location.href;
      if (isChanged(new URL(rule.href, base).href)) found.push(rule);
      else if (rule.styleSheet) collectImports(rule.styleSheet, isChanged, found, depth + 1);
    }
  }

  function topSheet(sheet) {
    while (sheet.ownerRule && sheet.ownerRule.parentStyleSheet) sheet = sheet.ownerRule.parentStyleSheet;
    return sheet;
  }

  // Loads a fresh copy next to the old <link> and removes the old one once the new one has
  // loaded, so the page never shows unstyled.
  function swapLink(link) {
    const fresh = link.cloneNode();
    // The fresh copy has other bytes: a Subresource Integrity hash would refuse it.
    fresh.removeAttribute("integrity");
    fresh.href = bust(link.href);
    link.dataset.liveserveReplaced = "1";
    const done = () => link.remove();
    fresh.addEventListener("load", done, { once: true });
    fresh.addEventListener("error", done, { once: true });
    link.after(fresh);
  }

  // For an @import inside a <style> element: swap the rule for one with a fresh URL.
  function replaceImportRule(rule) {
    const parent = rule.parentStyleSheet;
    const index = Array.from(parent.cssRules).indexOf(rule);
    if (index < 0) return;
    const url = bust(new URL(rule.href, parent.href || location.href).href);
    // Keep everything after the URL (layer(), supports(), media) as the rule had it.
    const tail = rule.cssText.replace(/^@import\s+(url\([^)]*\)|"[^"]*"|'[^']*')/i, "");
    parent.insertRule("@import url(" + JSON.stringify(url) + ")" + tail, index);
    parent.deleteRule(index + 1);
  }

  function bust(href) {
    const url = new URL(href, location.href);
    url.searchParams.set("liveserve", Date.now().toString(36));
    return url.href;
  }
})();
