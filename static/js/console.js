// The console: a terminal (xterm.js, static/vendor/xterm-6.0.0) on a replica, over the
// socket at /ws/exec/ (docs/console.md). A replica's "Console" button opens it with the
// command in the panel's field; the socket carries keystrokes in and output out as JSON.

/* global Terminal, FitAddon */

// xterm.js writes its computed styles (cell sizes, colours) into <style> elements, which the
// pages' Content-Security-Policy (style-src 'self', no inline style) refuses. Each such
// element is made a <fleet-style> instead, whose text goes into a constructed stylesheet
// adopted by the document: constructed stylesheets are not inline styles.
class FleetStyle extends HTMLElement {
  constructor() {
    super();
    this.sheet = new CSSStyleSheet();
    this.css = "";
  }
  connectedCallback() {
    if (!document.adoptedStyleSheets.includes(this.sheet)) {
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, this.sheet];
    }
  }
  disconnectedCallback() {
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== this.sheet);
  }
  get textContent() {
    return this.css;
  }
  set textContent(css) {
    this.css = String(css);
    this.sheet.replaceSync(this.css);
  }
  get innerText() {
    return this.css;
  }
  set innerText(css) {
    this.textContent = css;
  }
}
customElements.define("fleet-style", FleetStyle);
const createElement = Document.prototype.createElement;
Document.prototype.createElement = function (tag, options) {
  const name = String(tag).toLowerCase() === "style" ? "fleet-style" : tag;
  return createElement.call(this, name, options);
};

const panel = document.getElementById("console");
const screen = document.getElementById("console-screen");
const state = document.getElementById("console-state");
const command = document.getElementById("console-command");
let current = null; // {replica, slot, term, fit, socket}

function say(text) {
  state.textContent = text;
}

function send(message) {
  if (current?.socket.readyState === WebSocket.OPEN) current.socket.send(JSON.stringify(message));
}

function close() {
  if (!current) return;
  current.socket.close();
  current.term.dispose();
  current = null;
}

function open(replica, slot) {
  close();
  panel.hidden = false;
  document.getElementById("console-slot").textContent = slot;
  screen.replaceChildren();
  const term = new Terminal({ cursorBlink: true, scrollback: 2000, fontSize: 14 });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  fit.fit();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams({ replica, cmd: command.value, cols: term.cols, rows: term.rows });
  const socket = new WebSocket(`${scheme}//${location.host}${panel.dataset.socket}?${query}`);
  current = { replica, slot, term, fit, socket };
  say(`Opening ${command.value || "/bin/sh"} in replica ${slot}…`);
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "output") term.write(message.data);
    else if (message.type === "opened") {
      say(`${message.command} in ${message.container} on ${message.node}`);
      term.focus();
    } else if (message.type === "exit") {
      const code = message.code === null ? "" : ` (exit code ${message.code})`;
      say(`Ended: ${message.reason}${code}`);
    } else if (message.type === "error") say(message.message);
  });
  socket.addEventListener("close", (event) => {
    if (current?.socket === socket) term.options.disableStdin = true;
    // 4429: too many sockets of this user; the error message before it said so.
    if (event.code === 4429 && event.reason) say(event.reason);
    panel.dataset.open = "0";
  });
  socket.addEventListener("open", () => {
    panel.dataset.open = "1";
  });
  term.onData((data) => send({ type: "input", data }));
  term.onResize(({ cols, rows }) => send({ type: "resize", cols, rows }));
}

window.addEventListener("resize", () => current?.fit.fit());

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-act]");
  if (button?.dataset.act === "console") open(button.dataset.replica, button.dataset.slot);
  else if (button?.dataset.act === "console-close") {
    close();
    panel.hidden = true;
  }
});

document.getElementById("console-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (current) open(current.replica, current.slot);
});
