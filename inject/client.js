// liveserve's browser client, loaded by the tag liveserve injects into every HTML page it serves:
//   <script src="/__liveserve/client.js" data-path="/docs/" data-generation="3" [data-proxied]>
// It is a same-origin file, never inline code, so it works under a `script-src 'self'` policy.
//
// Protocol (see DESIGN.md): the server sends JSON messages on /__liveserve/ws, or as Server-Sent
// Events on /__liveserve/events where a network drops WebSocket upgrades.
//   hello  {server, generation, fingerprint, morph, errors}  on every connect
//   reload {generation, paths, all}                          something changed
//   css    {generation, paths}                               only these stylesheets changed
//   build  {failure: {command, status, output} | null}       the --exec command failed / is fixed
// Over the socket the page says what it shows: page {tab, path, generation, loading}, once
// connected and after each change it applied (for /__liveserve/status and `liveserve wait`).
// A tab acts only on changes that affect it: its own page (updated in place when it can be),
// what it loaded (stylesheets and images swapped in place, anything else reloads), or what it
// cannot judge (`all`, a page made by a backend).
//
// A page liveserve made because a backend did not answer (502/504) carries
// <meta name="liveserve-upstream-error">: the client asks for the page again now and then, and
// reloads once the backend itself answers.

const TAG = "[liveserve]";
const SCROLL_KEY = "liveserve:scroll:" + location.pathname;
// Reconnecting: each attempt waits a random time, at least RETRY_MIN_MS and at most that plus a
// window that doubles from RETRY_SPREAD_MS up to RETRY_MAX_MS. The randomness spreads the tabs of
// a restarted server over a second or more instead of all knocking at once; the growing window
// keeps a server that stays away for minutes from costing the tabs anything.
const RETRY_MIN_MS = 100;
const RETRY_SPREAD_MS = 1000;
const RETRY_MAX_MS = 5000;
const BACKEND_POLL_MS = 750;
const UPSTREAM_ERROR_HEADER = "x-liveserve-upstream-error";
// WebSocket attempts that fail before ever opening, after which the event stream is used.
const SOCKET_TRIES = 2;
// Errors sent at most per page and time window, and kept while not connected.
const ERRORS_PER_WINDOW = 10;
const ERRORS_WINDOW_MS = 5000;
// A change that takes longer to apply than this (a stylesheet that never loads) no longer holds
// up the ones after it.
const APPLY_TIMEOUT_MS = 5000;

const script = document.currentScript;
const servedAt = script && script.dataset.generation ? Number(script.dataset.generation) : null;
const TAB = tabId();
const state = {
  // The URL path this page was served for (its index file, or the missing path of a 404).
  path: script && script.dataset.path,
  // A backend made this page: it cannot tell what its HTML is made from.
  proxied: Boolean(script && script.hasAttribute("data-proxied")),
  connected: false,
  // How many times a connection has been made (tests and curious people can watch it).
  connects: 0,
  // "websocket" or "events".
  transport: null,
  server: null,
  fingerprint: null,
  generation: null,
  morph: false,
  swap: true,
  errors: false,
  // How many times the page was updated in place.
  morphs: 0,
  // The last change generation this page shows.
  applied: servedAt || 0,
};

let retryWindowMs = RETRY_SPREAD_MS;
let retryTimer = null;
let warned = false;
let reloading = false;
// The server at this address serves another project: its messages are not for this page.
let foreign = false;
let socket = null;
let socketFailures = 0;
let channel = null;
// This tab holds the event stream, and the last hello it had (for tabs that join).
let holdsStream = false;
let lastHello = null;
// Changes are applied one after the other: a later one waits for the one before.
let applying = Promise.resolve();

// The early tag (right after <head>) only listens for errors, so that those a page's scripts
// throw before the client's own tag runs are not lost. The client's tag can appear twice (a page
// that includes a fragment that also got it): it starts once.
if (script && script.hasAttribute("data-early")) listenForErrors();
else if (!window.__liveserve) start();

function start() {
  window.__liveserve = state;
  // A big page loads more than the 250 resources the browser remembers by default; what it
  // loaded is how a tab knows whether a change is its business.
  if (performance.setResourceTimingBufferSize) performance.setResourceTimingBufferSize(10000);
  rememberSource();
  restoreScroll();
  listenForErrors();
  connect();
  waitForBackend();
}

// Connecting ----------------------------------------------------------------------------------

function connect() {
  retryTimer = null;
  if (socketFailures >= SOCKET_TRIES) {
    connectEvents();
    return;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let opened = false;
  try {
    socket = new WebSocket(scheme + "//" + location.host + "/__liveserve/ws");
  } catch (error) {
    socketFailures += 1;
    scheduleReconnect();
    return;
  }
  socket.onopen = () => {
    opened = true;
    socketFailures = 0;
  };
  socket.onmessage = (event) => receive(event.data, "websocket");
  socket.onclose = () => {
    socket = null;
    lost();
    if (opened) {
      scheduleReconnect();
      return;
    }
    // Never opened: the server is away (restarting), or something on the way drops upgrades.
    // Only the second counts towards the event stream: a server that answers plain requests.
    serverAnswers().then((answers) => {
      if (answers) socketFailures += 1;
      scheduleReconnect();
    });
  };
}

function serverAnswers() {
  const probe = (script && script.src) || location.href;
  return fetch(probe, { method: "HEAD", cache: "no-store" }).then(
    () => true,
    () => false,
  );
}

// The event stream, where WebSocket upgrades do not get through. One tab of this server holds
// it and passes every message to the others over a BroadcastChannel, so tabs do not use up the
// browser's six connections per server.
function connectEvents() {
  if (channel !== null) return;
  channel = new BroadcastChannel("liveserve:" + location.host);
  channel.onmessage = (event) => {
    if (event.data === "ask") {
      if (holdsStream && lastHello) channel.postMessage(Object.assign({}, lastHello, { generation: state.generation }));
    } else {
      handle(event.data, "events");
    }
  };
  const hold = () =>
    new Promise(() => {
      holdsStream = true;
      const stream = new EventSource("/__liveserve/events");
      stream.onmessage = (event) => {
        receive(event.data, "events");
        channel.postMessage(JSON.parse(event.data));
      };
      stream.onerror = () => lost();
    });
  if (navigator.locks) {
    navigator.locks.request("liveserve:events:" + location.host, hold);
    // Until this tab holds the stream, the holder tells it where things stand.
    channel.postMessage("ask");
  } else {
    hold();
  }
}
function receive(text, transport) {
  let message;
  try {
    message = JSON.parse(text);
  } catch (error) {
    return;
  }
  handle(message, transport);
}

function lost() {
  const wasConnected = state.connected;
  state.connected = false;
  if (!wasConnected && state.server === null && !warned) {
    warned = true;
    console.warn(TAG, "cannot reach the live reload socket; this page will not reload by itself until it can");
  }
}

function scheduleReconnect() {
  if (retryTimer !== null || reloading) return;
  if (whenVisible(scheduleReconnect)) return;
  retryTimer = setTimeout(connect, RETRY_MIN_MS + Math.random() * retryWindowMs);
  retryWindowMs = Math.min(retryWindowMs * 2, RETRY_MAX_MS);
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

// Messages ------------------------------------------------------------------------------------

function handle(message, transport) {
  if (foreign && message.type !== "hello") return;
  switch (message.type) {
    case "hello":
      hello(message, transport);
      break;
    case "reload":
      state.generation = message.generation;
      applied(message.generation, () => changed(message.paths || [], Boolean(message.all)));
      break;
    case "css":
      state.generation = message.generation;
      applied(message.generation, () => {
        if (!state.swap) return changed(message.paths || [], false);
        if (state.proxied || affectsThisPage(message.paths || []).length > 0) {
          return swapStylesheets(message.paths || [], state.proxied);
        }
        return null;
      });
      break;
    case "build":
      if (message.failure) showBuildFailure(message.failure);
      else hideBuildFailure();
      break;
    default:
      // A newer server may send kinds this client does not know: ignore them.
      break;
  }
}

// Applies a change (`apply` may return a promise) after those before it, then tells the server
// the page shows `generation` (unless the page is reloading: the new page will say).
function applied(generation, apply) {
  report(true);
  const timeout = new Promise((resolve) => setTimeout(resolve, APPLY_TIMEOUT_MS));
  applying = applying
    .then(() => Promise.race([Promise.resolve().then(apply), timeout]))
    .catch(() => null)
    .then(() => {
      if (reloading) return;
      state.applied = Math.max(state.applied, generation);
      report(false);
    });
}

// Tells the server what this page shows, over the socket (the event stream is one-way).
function report(loading) {
  // A frame shares its page's session storage, so its tab id: the page speaks for the tab.
  if (window !== window.top) return;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  const path = location.pathname + location.search;
  socket.send(JSON.stringify({ type: "page", tab: TAB, path, generation: state.applied, loading }));
}

// The tab's id, kept across its reloads in session storage.
function tabId() {
  const key = "liveserve:tab";
  try {
    const known = sessionStorage.getItem(key);
    if (known) return known;
    const fresh = Math.random().toString(36).slice(2) + Date.now().toString(36);
    sessionStorage.setItem(key, fresh);
    return fresh;
  } catch (error) {
    return Math.random().toString(36).slice(2);
  }
}

function hello(message, transport) {
  lastHello = message;
  const first = state.server === null;
  const restarted = !first && message.server !== state.server;
  const anotherApp = Boolean(state.fingerprint && message.fingerprint && message.fingerprint !== state.fingerprint);
  // Missed: the server restarted, a change came while away, or (first hello) a change was sent
  // between serving this page and this connection.
  const missed = first
    ? servedAt !== null && message.generation > servedAt
    : restarted || message.generation !== state.generation;
  state.server = message.server;
  state.generation = message.generation;
  state.fingerprint = state.fingerprint || message.fingerprint;
  state.morph = Boolean(message.morph);
  state.swap = message.swap !== false;
  state.errors = Boolean(message.errors);
  state.transport = transport;
  state.connected = true;
  state.connects += 1;
  retryWindowMs = RETRY_SPREAD_MS;
  if (!missed && !anotherApp && !foreign) state.applied = message.generation;
  const loading = missed || document.readyState !== "complete";
  // Errors the page hit before it connected go out before it says it is done: else `liveserve
  // wait` could see a page that is done and has no errors, between the two.
  const queuedErrors = errorLog().pending.length > 0;
  report(loading || queuedErrors);
  startSendingErrors();
  if (queuedErrors && !loading) report(false);
  if (loading && !missed) window.addEventListener("load", () => report(false), { once: true });
  if (message.build && !anotherApp) showBuildFailure(message.build);
  else hideBuildFailure();
  if (anotherApp) {
    if (!foreign) {
      showBanner("this address now serves another project; this page stays as it is until this project's liveserve is back.");
    }
    foreign = true;
    return;
  }
  if (foreign) {
    // This project is back: the page may be out of date.
    foreign = false;
    reload();
  } else if (missed) {
    console.log(TAG, first ? "changed while loading; reloading" : "reconnected after changes; reloading");
    reload();
  }
}

// The change `paths` (all pages: `all`), as far as this tab is concerned. A page made by a
// backend, or whose tag does not say its path, cannot judge: it reloads. Returns a promise when
// the page is updated in place, settled once it is.
function changed(paths, all) {
  if (all || state.proxied || !state.path) {
    reload();
    return;
  }
  const mine = affectsThisPage(paths);
  if (mine.length === 0) return; // another page's, or an asset this page does not use
  const own = mine.filter(isOwnPage);
  const swappable = state.swap ? mine.filter((path) => isStylePath(path) || isMediaPath(path)) : [];
  if (own.length + swappable.length < mine.length) {
    reload(); // a script, or anything else only a reload takes in
    return;
  }
  const page = own.length > 0 ? updateInPlace() : Promise.resolve(true);
  return page
    .then((updated) => {
      if (!updated) return reload();
      const styles = swappable.filter(isStylePath);
      const media = swappable.filter(isMediaPath);
      return Promise.all([styles.length ? swapStylesheets(styles, false) : null, media.length ? swapMedia(media) : null]);
    })
    .catch((error) => {
      console.warn(TAG, "updating the page failed; reloading", error);
      reload();
    });
}

// The changed paths this page shows: itself (a listing shows its folder's files), or what it
// loaded, frames included.
function affectsThisPage(paths) {
  const loaded = loadedPaths();
  return paths.filter((path) => isOwnPage(path) || loaded.has(path));
}

function isOwnPage(path) {
  if (path === state.path || path === location.pathname) return true;
  // A listing (its path ends with /) shows the files in its folder.
  if (state.path && state.path.endsWith("/") && path.startsWith(state.path)) {
    return !path.slice(state.path.length).includes("/");
  }
  return false;
}

function loadedPaths() {
  const paths = new Set();
  const collect = (win) => {
    try {
      for (const entry of win.performance.getEntriesByType("resource")) {
        const path = ownPath(entry.name);
        if (path !== null) paths.add(path);
      }
      for (let i = 0; i < win.frames.length; i++) collect(win.frames[i]);
    } catch (error) {
      // a frame from another origin cannot be read
    }
  };
  collect(window);
  return paths;
}

// Fetches this page again and applies it in place. Resolves to false when only a reload is right.
function updateInPlace() {
  if (!state.morph) return Promise.resolve(false);
  return fetch(location.href, { cache: "no-store", credentials: "same-origin" }).then((response) => {
    const type = response.headers.get("content-type") || "";
    if (!response.ok || !type.includes("text/html")) return false;
    return response.text().then((html) => {
      const result = morphPage(html);
      if (!result.applied) return false;
      state.morphs += 1;
      if (result.kept > 0) {
        showBanner("this page changed, but a field you typed in kept what you typed. Reload to see the new version.");
      }
      return true;
    });
  });
}

function reload() {
  if (reloading) return;
  reloading = true;
  report(true);
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

// A small note in a corner of the page, gone after a while or when clicked.
function showBanner(text) {
  const note = document.createElement("div");
  note.setAttribute("role", "status");
  note.dataset.liveserveNote = "";
  note.textContent = "liveserve: " + text;
  note.style.cssText =
    "position:fixed;z-index:2147483647;right:12px;bottom:12px;max-width:28rem;padding:10px 14px;" +
    "font:13px/1.4 system-ui,sans-serif;color:#fff;background:#333;border-radius:6px;" +
    "box-shadow:0 2px 8px rgba(0,0,0,.3);cursor:pointer";
  note.addEventListener("click", () => note.remove());
  document.body.appendChild(note);
  setTimeout(() => note.remove(), 10000);
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

// Errors to the terminal ----------------------------------------------------------------------

// The errors waiting to be sent and the way to send them, kept on the window: the early tag's run
// of this script queues them, the client's run sends them once connected.
function errorLog() {
  if (!window.__liveserveErrors) window.__liveserveErrors = { listening: false, pending: [], sent: [], send: null };
  return window.__liveserveErrors;
}

function listenForErrors() {
  const log = errorLog();
  if (log.listening) return;
  log.listening = true;
  window.addEventListener(
    "error",
    (event) => {
      const target = event.target;
      if (target && target !== window && (target.src || target.href)) {
        reportError("failed to load " + (ownPath(target.src || target.href) || target.src || target.href));
      } else if (event.message) {
        const where = event.filename ? " (" + (ownPath(event.filename) || event.filename) + ":" + event.lineno + ")" : "";
        reportError(event.message + where);
      }
    },
    true,
  );
  window.addEventListener("unhandledrejection", (event) => reportError("unhandled rejection: " + describe(event.reason)));
  document.addEventListener("securitypolicyviolation", (event) =>
    reportError("blocked by the Content-Security-Policy (" + event.violatedDirective + "): " + event.blockedURI),
  );
  const consoleError = console.error;
  console.error = function (...args) {
    reportError("console.error: " + args.map(describe).join(" "));
    return consoleError.apply(this, args);
  };
}

function describe(value) {
  if (value instanceof Error) return value.name + ": " + value.message;
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value);
  } catch (error) {
    return String(value);
  }
}

function reportError(text) {
  const log = errorLog();
  const now = Date.now();
  log.sent = log.sent.filter((at) => now - at < ERRORS_WINDOW_MS);
  if (log.sent.length >= ERRORS_PER_WINDOW) return;
  log.sent.push(now);
  text = String(text).slice(0, 1000);
  if (log.send) log.send(text);
  else if (log.pending.length < ERRORS_PER_WINDOW) log.pending.push(text);
}

// Connected: send what was queued, and everything from now on, if the server wants it.
function startSendingErrors() {
  const log = errorLog();
  log.send = sendError;
  while (log.pending.length > 0) sendError(log.pending.shift());
}

function sendError(text) {
  if (!state.errors) return;
  const body = JSON.stringify({ type: "error", path: state.path || location.pathname, text });
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(body);
  } else {
    fetch("/__liveserve/errors", { method: "POST", body, keepalive: true, headers: { "content-type": "application/json" } }).catch(() => null);
  }
}
