// Swapping what changed into the page without reloading it: stylesheets (<link>, @import) and
// media (<img>, srcset, <picture>, the favicon, images a stylesheet uses).
//
// Part of liveserve's browser client: the files in inject/ are joined into one script, inside
// one function, in the order swap.js, morph.js, client.js.

const MEDIA = /\.(png|jpe?g|gif|webp|avif|svg|ico|bmp)$/i;

function isStylePath(path) {
  return /\.css(\.map)?$/i.test(path);
}

function isMediaPath(path) {
  return MEDIA.test(path);
}

// The URL path of `href` if it is on this origin, else null.
function ownPath(href, base) {
  try {
    const url = new URL(href, base || location.href);
    return url.origin === location.origin ? url.pathname : null;
  } catch (error) {
    return null;
  }
}

function bust(href) {
  const url = new URL(href, location.href);
  url.searchParams.set("liveserve", Date.now().toString(36));
  return url.href;
}

// Stylesheets ---------------------------------------------------------------------------------

// Swaps the stylesheets whose path changed; with `everyOwn`, when none of the page's matches,
// every same-origin stylesheet (a backend may serve a file under another URL).
function swapStylesheets(paths, everyOwn) {
  const changed = new Set(paths);
  const isChanged = (href, base) => changed.has(ownPath(href, base));
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
  if (everyOwn && links.size === 0 && imports.length === 0) {
    for (const link of document.querySelectorAll('link[rel~="stylesheet"][href]')) {
      if (!link.dataset.liveserveReplaced && ownPath(link.href) !== null) links.add(link);
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
  return refreshCache(importedUrls).then(() => Promise.all(Array.from(links, swapLink)));
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
    if (isChanged(rule.href, base)) found.push(rule);
    else if (rule.styleSheet) collectImports(rule.styleSheet, isChanged, found, depth + 1);
  }
}

function topSheet(sheet) {
  while (sheet.ownerRule && sheet.ownerRule.parentStyleSheet) sheet = sheet.ownerRule.parentStyleSheet;
  return sheet;
}

// Loads a fresh copy next to the old <link> and removes the old one once the new one has
// loaded, so the page never shows unstyled.
// Replaces `link` by a fresh copy; resolves once the copy has loaded (or failed to).
function swapLink(link) {
  // A link the page removed meanwhile has nothing to replace; a disabled one never loads.
  if (!link.isConnected) return Promise.resolve();
  const fresh = link.cloneNode();
  // The fresh copy has other bytes: a Subresource Integrity hash would refuse it.
  fresh.removeAttribute("integrity");
  fresh.href = bust(link.href);
  link.dataset.liveserveReplaced = "1";
  return new Promise((resolve) => {
    const done = () => {
      link.remove();
      resolve();
    };
    fresh.addEventListener("load", done, { once: true });
    fresh.addEventListener("error", done, { once: true });
    link.after(fresh);
    if (fresh.disabled) done();
  });
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

// Fetches each URL past the HTTP cache, so what loads it next gets the new bytes.
function refreshCache(urls) {
  return Promise.all(urls.map((url) => fetch(url, { cache: "reload" }).catch(() => null)));
}

// Media ---------------------------------------------------------------------------------------

// Re-fetches the changed images the page shows and swaps them in. Returns a promise.
function swapMedia(paths) {
  const changed = new Set(paths);
  const isChanged = (href) => changed.has(ownPath(href));
  const rewriteSrcset = (srcset) =>
    srcset
      .split(",")
      .map((candidate) => {
        const [url, ...descriptor] = candidate.trim().split(/\s+/);
        return isChanged(url) ? [bust(url), ...descriptor].join(" ") : candidate.trim();
      })
      .join(", ");
  const candidates = (srcset) => srcset.split(",").map((candidate) => candidate.trim().split(/\s+/)[0]);
  const pictures = new Set();
  for (const source of document.querySelectorAll("picture source[srcset]")) {
    if (candidates(source.srcset).some(isChanged)) {
      source.srcset = rewriteSrcset(source.srcset);
      pictures.add(source.parentElement);
    }
  }
  for (const image of Array.from(document.images)) {
    const src = image.getAttribute("src");
    if (src && isChanged(src)) image.src = bust(src);
    const srcset = image.getAttribute("srcset");
    if (srcset && candidates(srcset).some(isChanged)) image.srcset = rewriteSrcset(srcset);
    // A <picture> picks its source again only when its <img> changes.
    if (pictures.has(image.parentElement)) image.src = image.src;
  }
  for (const icon of document.querySelectorAll('link[rel~="icon"][href]')) {
    if (isChanged(icon.href)) icon.href = bust(icon.href);
  }
  // Images a stylesheet uses (url() in CSS): refresh them in the cache, then the stylesheets.
  const fromCss = performance
    .getEntriesByType("resource")
    .filter((entry) => entry.initiatorType === "css" && isChanged(entry.name))
    .map((entry) => entry.name);
  if (fromCss.length === 0) return Promise.resolve();
  return refreshCache(fromCss).then(() => swapStylesheets([], true));
}
