// Updating the page in place when its own HTML file changed: a three-way merge. The client keeps
// the page as its HTML made it (`source`, a copy taken before any deferred script ran) and which
// live node each source node is. A new version of the HTML is compared with that source, and only
// what the file changed is applied to the live page: what scripts built or changed since, the
// scroll positions, the focus and what the user typed all stay, unless the file changed them.
//
// It refuses (the page reloads instead) whenever an in-place update could be wrong: scripts
// added, removed or changed, another <base>, <meta http-equiv>, or attributes of <html> and
// <body>, which scripts may depend on.

// The page's source (head, body, the attributes of <html>) and the live node of each source node.
let source = null;

// Copies the page as it is now. Called while the client script runs, before deferred scripts.
// A client loaded from <head> has no body to copy yet: such a page reloads instead.
function rememberSource() {
  if (!document.body) return;
  source = { nodes: new Map(), html: attributesOf(document.documentElement) };
  source.head = snapshot(document.head, source.nodes);
  source.body = snapshot(document.body, source.nodes);
}

function snapshot(live, nodes) {
  const copy = live.cloneNode(true);
  pair(copy, live, nodes);
  return copy;
}

// Records which live node each copied node is (they are identical right after cloning).
function pair(copy, live, nodes) {
  nodes.set(copy, live);
  const copies = copy.childNodes;
  const lives = live.childNodes;
  for (let i = 0; i < copies.length && i < lives.length; i++) pair(copies[i], lives[i], nodes);
}

// Applies the page `html` in place. Returns { applied, kept } — `applied` false when only a
// reload is right (nothing was changed then); `kept` the fields whose typed value was kept
// although the file changed them.
function morphPage(html) {
  if (source === null) return { applied: false, kept: 0 };
  const next = new DOMParser().parseFromString(html, "text/html");
  const before = { head: source.head, body: source.body };
  if (
    signature(scriptsOf(before.head, before.body)) !== signature(scriptsOf(next.head, next.body)) ||
    baseOf(before.head) !== baseOf(next.head) ||
    signature(metaEquivOf(before.head)) !== signature(metaEquivOf(next.head)) ||
    source.html !== attributesOf(next.documentElement) ||
    attributesOf(before.body) !== attributesOf(next.body)
  ) {
    return { applied: false, kept: 0 };
  }
  // `live`: the live node of each old source node; `next`: of each new one, filled as it goes.
  const merge = { kept: 0, live: source.nodes, next: new Map() };
  merge.next.set(next.head, document.head);
  merge.next.set(next.body, document.body);
  mergeChildren(before.head, next.head, document.head, merge);
  mergeChildren(before.body, next.body, document.body, merge);
  source = { nodes: merge.next, html: source.html, head: next.head, body: next.body };
  return { applied: true, kept: merge.kept };
}

function isClientScript(node) {
  return node.nodeType === 1 && node.tagName === "SCRIPT" &&
    /\/__liveserve\/client\.js(\?|$)/.test(node.getAttribute("src") || "");
}

function scriptsOf(head, body) {
  return Array.from(head.querySelectorAll("script"))
    .concat(Array.from(body.querySelectorAll("script")))
    .filter((script) => !isClientScript(script))
    .map((script) => [script.getAttribute("type") || "", script.getAttribute("src") || "", script.src ? "" : script.textContent, attributesOf(script)].join("|"));
}

function baseOf(head) {
  const base = head.querySelector("base");
  return base ? base.getAttribute("href") + "|" + base.getAttribute("target") : "";
}

function metaEquivOf(head) {
  return Array.from(head.querySelectorAll("meta[http-equiv]")).map((meta) => attributesOf(meta));
}

function attributesOf(element) {
  return Array.from(element.attributes)
    .map((attribute) => attribute.name + "=" + attribute.value)
    .sort()
    .join("\u0000");
}

function signature(list) {
  return list.join("\u0001");
}

// A key for matching children of the old and new source: elements by id when they have one,
// else by tag; text and comments by kind.
function keyOf(node) {
  if (node.nodeType === 1) return node.id ? "#" + node.id : node.tagName;
  return node.nodeType === 3 ? "#text" : node.nodeType === 8 ? "#comment" : "#other";
}

// Applies what changed between `before` and `after` (source nodes) to `live`'s children.
function mergeChildren(before, after, live, merge) {
  const olds = Array.from(before.childNodes).filter((node) => !isClientScript(node));
  const news = Array.from(after.childNodes).filter((node) => !isClientScript(node));
  // Match each new child to the first unmatched old child with its key at or after the cursor;
  // an id is looked for everywhere.
  const matchOf = new Map();
  const taken = new Set();
  let cursor = 0;
  for (const node of news) {
    const key = keyOf(node);
    let found = -1;
    const from = key.startsWith("#") && node.nodeType === 1 ? 0 : cursor;
    for (let i = from; i < olds.length; i++) {
      if (!taken.has(i) && keyOf(olds[i]) === key) {
        found = i;
        break;
      }
    }
    if (found >= 0) {
      taken.add(found);
      matchOf.set(node, olds[found]);
      if (found >= cursor) cursor = found + 1;
    }
  }
  // Gone from the file: gone from the page.
  olds.forEach((node, i) => {
    if (taken.has(i)) return;
    const gone = merge.live.get(node);
    if (gone && gone.parentNode === live) gone.remove();
  });
  // Changed or new, in the file's order (walked from the end, to insert before what follows);
  // a node of the page's own (built by a script) stays where it is.
  for (let i = news.length - 1, following = null; i >= 0; i--) {
    const node = news[i];
    const old = matchOf.get(node);
    let current = old ? merge.live.get(old) : null;
    if (current && current.parentNode === live) {
      merge.next.set(node, current);
      mergeNode(old, node, current, merge);
    } else {
      current = document.importNode(node, true);
      live.insertBefore(current, following && following.parentNode === live ? following : null);
      pair(node, current, merge.next);
    }
    following = current;
  }
}

function mergeNode(before, after, live, merge) {
  if (before.nodeType !== 1) {
    if (before.nodeValue !== after.nodeValue) live.nodeValue = after.nodeValue;
    return;
  }
  const typed = isField(live) && live.value !== live.defaultValue;
  for (const attribute of Array.from(after.attributes)) {
    if (before.getAttribute(attribute.name) === attribute.value) continue;
    if (typed && attribute.name === "value") {
      merge.kept += 1;
      continue;
    }
    live.setAttribute(attribute.name, attribute.value);
  }
  for (const attribute of Array.from(before.attributes)) {
    if (!after.hasAttribute(attribute.name)) live.removeAttribute(attribute.name);
  }
  if (live.tagName === "TEXTAREA") {
    if (before.textContent !== after.textContent) {
      if (typed) merge.kept += 1;
      else live.value = live.defaultValue = after.textContent;
    }
    return;
  }
  mergeChildren(before, after, live, merge);
}

function isField(element) {
  return element.tagName === "INPUT" || element.tagName === "TEXTAREA";
}
