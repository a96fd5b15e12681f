// The build failure overlay: when the `--exec` command fails, the page shows the command, how it
// ended and the end of its output over its last good content, until a run succeeds or the user
// dismisses it. It lives in a shadow root on its own element outside <body>, so the page's styles
// do not reach it, its styles do not reach the page, and in-place updates of the body leave it be.
// Everything in it is text (textContent), never markup: a compiler's `<div>` shows as written.

const OVERLAY_TAG = "liveserve-overlay";

const OVERLAY_STYLE = `
:host { all: initial; position: fixed; inset: 0; z-index: 2147483647; display: flex;
  align-items: flex-start; justify-content: center; padding: 5vh 3vw; box-sizing: border-box;
  background: rgba(20, 20, 20, .55); font: 14px/1.45 system-ui, sans-serif; }
.box { box-sizing: border-box; width: min(960px, 100%); max-height: 90vh; display: flex;
  flex-direction: column; background: #1e1e1e; color: #eee; border-top: 4px solid #e5484d;
  border-radius: 6px; box-shadow: 0 10px 40px rgba(0, 0, 0, .5); }
header { display: flex; gap: 1rem; align-items: baseline; padding: 14px 18px 8px; }
h1 { margin: 0; font-size: 16px; font-weight: 600; color: #ff8a8a; flex: 1; }
code { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; color: #fff; }
button { all: initial; cursor: pointer; color: #bbb; font: 20px/1 system-ui, sans-serif;
  padding: 0 4px; }
button:hover, button:focus-visible { color: #fff; outline: 1px solid #888; }
p { margin: 0 18px 10px; color: #bbb; }
pre { margin: 0; padding: 12px 18px 16px; overflow: auto; white-space: pre-wrap;
  font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; color: #ddd;
  border-top: 1px solid #333; }
`;

// Shows `failure` ({command, status, output}), replacing any shown before.
function showBuildFailure(failure) {
  hideBuildFailure();
  const host = document.createElement(OVERLAY_TAG);
  const root = host.attachShadow({ mode: "open" });
  // A constructed stylesheet is not inline markup: a `style-src 'self'` policy allows it.
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(OVERLAY_STYLE);
  root.adoptedStyleSheets = [sheet];
  const box = document.createElement("div");
  box.className = "box";
  box.setAttribute("role", "alertdialog");
  box.setAttribute("aria-label", "liveserve: the build failed");
  const header = document.createElement("header");
  const title = document.createElement("h1");
  title.textContent = "Build failed: ";
  const command = document.createElement("code");
  command.textContent = failure.command;
  title.appendChild(command);
  const close = document.createElement("button");
  close.type = "button";
  close.title = "Dismiss (the page updates when a build succeeds)";
  close.textContent = "×";
  close.addEventListener("click", hideBuildFailure);
  header.append(title, close);
  const status = document.createElement("p");
  status.textContent = failure.status + " — the page shows the last good build; it updates when a build succeeds.";
  const output = document.createElement("pre");
  output.textContent = failure.output || "(no output)";
  box.append(header, status, output);
  root.append(box);
  document.documentElement.appendChild(host);
  output.scrollTop = output.scrollHeight;
}

function hideBuildFailure() {
  for (const shown of document.querySelectorAll(OVERLAY_TAG)) shown.remove();
}
