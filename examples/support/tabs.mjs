// Many pages in one Node process, for examples/restart_tabs.rs: each runs liveserve's real browser
// client (the script the server serves at /__liveserve/client.js) in a context of its own, with
// the little of a browser it uses when it connects, reconnects and reloads. A reload starts the
// page again in a fresh context, as a browser would.
//
//   node --experimental-websocket tabs.mjs PORT COUNT
//
// Prints "connected" once every page is connected, then, once every page has reconnected after a
// restart and stayed put for two seconds, one line of JSON: for each page the moment (ms after the
// first socket closed) of its first attempt to reconnect, and how many times it reloaded.

import vm from "node:vm";

const [port, countText] = process.argv.slice(2);
const count = Number(countText);
const host = `127.0.0.1:${port}`;
const source = await (await fetch(`http://${host}/__liveserve/client.js`)).text();
const noop = () => {};

const pages = Array.from({ length: count }, () => ({
  storage: new Map(),
  loads: 0,
  firstRetry: null,
  client: null,
  socket: null,
}));
let firstClose = null;
let restarted = false;

function load(page) {
  page.loads += 1;
  const generation = page.loads;
  const sessionStorage = {
    getItem: (key) => (page.storage.has(key) ? page.storage.get(key) : null),
    setItem: (key, value) => page.storage.set(key, String(value)),
    removeItem: (key) => page.storage.delete(key),
  };
  class RecordingWebSocket extends WebSocket {
    constructor(url) {
      super(url);
      if (page.loads !== generation) return;
      if (restarted && page.firstRetry === null && generation === 1) page.firstRetry = performance.now();
      page.socket = this;
      let closed = false;
      this.addEventListener("close", () => {
        closed = true;
        if (restarted && firstClose === null) firstClose = performance.now();
      });
      // A browser follows a failed connection's error with a close; Node 20 does not.
      this.addEventListener("error", () =>
        setTimeout(() => {
          if (!closed && this.onclose) this.onclose(new Event("close"));
        }, 0),
      );
    }
  }
  const element = { dataset: {}, style: {}, append: noop, remove: noop, setAttribute: noop, attachShadow: () => element };
  const document = {
    currentScript: {
      dataset: { path: "/", generation: "0" },
      hasAttribute: (name) => name === "data-path" || name === "data-generation",
      src: `http://${host}/__liveserve/client.js`,
    },
    readyState: "complete",
    hidden: false,
    addEventListener: noop,
    removeEventListener: noop,
    querySelector: () => null,
    querySelectorAll: () => [],
    createElement: () => element,
    // No body: nothing to update in place, which a restart never does anyway.
    body: null,
  };
  const window = {
    document,
    location: {
      protocol: "http:",
      host,
      href: `http://${host}/`,
      pathname: "/",
      search: "",
      reload: () => {
        if (page.socket) page.socket.close();
        setTimeout(() => load(page), 0);
      },
    },
    sessionStorage,
    navigator: {},
    performance: {},
    console: { log: noop, warn: noop, error: noop, info: noop, debug: noop },
    WebSocket: RecordingWebSocket,
    fetch,
    // A page that reloaded is gone: what its timers would still do, it does not.
    setTimeout: (run, ms) => setTimeout(() => page.loads === generation && run(), ms),
    clearTimeout,
    scrollX: 0,
    scrollY: 0,
    scrollTo: noop,
    addEventListener: noop,
    removeEventListener: noop,
  };
  window.window = window;
  window.top = window;
  window.self = window;
  const context = vm.createContext(window);
  vm.runInContext(source, context);
  page.client = context.__liveserve;
}

function every(test) {
  return pages.every((page) => page.client && test(page));
}

function when(test, then) {
  const check = setInterval(() => {
    if (!every(test)) return;
    clearInterval(check);
    then();
  }, 20);
}

pages.forEach(load);
when(
  (page) => page.client.connected,
  () => {
    restarted = true;
    console.log("connected");
    when(
      (page) => page.loads >= 2 && page.client.connected,
      () =>
        setTimeout(() => {
          const report = pages.map((page) => ({
            retry: page.firstRetry === null ? null : page.firstRetry - firstClose,
            reloads: page.loads - 1,
            connected: page.client.connected,
          }));
          console.log(JSON.stringify(report));
          process.exit(0);
        }, 2000),
    );
  },
);
