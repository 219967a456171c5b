// Fleet's live dashboard: one socket keeps every fragment on the page current, and
// the buttons act through the REST API. Pages are complete without this file.

let socket = null;
let lastSeq = null;
let gapTimer = null;
let following = null; // the replica whose log is shown
let lastError = null; // the last error the socket sent: a refusal's reason comes first
const REFUSED_RETRY_MS = 30000;

function say(text, isError = false) {
  const notice = document.getElementById("notice"); // looked up anew: a refresh replaces it
  if (!notice) return;
  notice.textContent = text;
  notice.classList.toggle("error", isError);
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function describeErrors(body) {
  if (!body || typeof body !== "object") return "the request failed";
  if (body.detail) return body.detail;
  const lines = [];
  const walk = (value, path) => {
    if (Array.isArray(value) && value.every((v) => typeof v === "string")) {
      lines.push(`${path || "request"}: ${value.join(" ")}`);
    } else if (value && typeof value === "object") {
      for (const [key, inner] of Object.entries(value)) walk(inner, path ? `${path}.${key}` : key);
    } else {
      lines.push(`${path}: ${value}`);
    }
  };
  walk(body, "");
  return lines.join("; ");
}

// Send an API call from a button: pending at once, the outcome when it is known.
async function act(button, url, body, pendingText, method = "POST") {
  button.setAttribute("aria-busy", "true");
  button.disabled = true;
  say(pendingText);
  try {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body ?? {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      say(`Not done: ${describeErrors(data)}`, true);
      return null;
    }
    say(`${pendingText.replace(/…$/, "")}: accepted; the page follows the outcome.`);
    return data;
  } catch (error) {
    say(`Not done: ${error.message}`, true);
    return null;
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = false;
  }
}

function matches(container, data) {
  const service = container.dataset.filterService;
  const node = container.dataset.filterNode;
  if (service !== undefined && data.service !== service) return false;
  if (node !== undefined && (data.node || "") !== node) return false;
  const { filterActor: actor, filterKind: kind } = container.dataset;
  if (actor !== undefined && data.actor !== actor) return false;
  if (kind !== undefined && data.kind !== kind) return false;
  return true;
}

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content.firstElementChild;
}

// An object shown already is morphed into its new form (morphdom), not replaced: the
// control under the pointer or in focus stays the same element, so a click or a Tab is not
// lost to a live change. A busy button and a field being typed in are left as they are.
function update(element, html) {
  window.morphdom(element, fragment(html), {
    onBeforeElUpdated(from, to) {
      if (from.getAttribute("aria-busy") === "true") return false;
      if (from === document.activeElement && ["INPUT", "SELECT", "TEXTAREA"].includes(from.tagName)) return false;
      return !from.isEqualNode(to);
    },
  });
}

// Put one envelope on the page: morph the object where it is, move it where it
// now belongs, add it where it is new, or remove it once it is gone.
function apply(message) {
  // Other fragments of the same object (a node's summary on its page) come along.
  for (const [type, html] of Object.entries(message.views ?? {})) {
    apply({ type, id: message.id, data: message.data, html });
  }
  const selector = `[data-live="${message.type}"][data-id="${CSS.escape(String(message.id))}"]`;
  const existing = [...document.querySelectorAll(selector)];
  if (message.data === null) {
    existing.forEach((element) => element.remove());
    return;
  }
  let placed = false;
  for (const element of existing) {
    const container = element.closest("[data-live-container]");
    if (container && !matches(container, message.data)) {
      element.remove();
    } else {
      update(element, message.html);
      placed = true;
    }
  }
  if (placed) return;
  for (const container of document.querySelectorAll(`[data-live-container="${message.type}"]`)) {
    if (!matches(container, message.data)) continue;
    container.querySelector("[data-placeholder]")?.remove();
    const element = fragment(message.html);
    if (container.dataset.fold !== undefined) fold(container, element);
    if (container.dataset.insert === "afterbegin") container.prepend(element);
    else container.append(element);
    const limit = Number(container.dataset.limit || 0);
    while (limit && container.children.length > limit) container.lastElementChild.remove();
  }
}

// A feed shows repeats as one line: a new event like one listed takes its place, counted.
function fold(container, element) {
  const key = element.dataset.foldKey;
  const earlier = [...container.children].find((child) => child.dataset.foldKey === key);
  if (!earlier) return;
  const count = Number(earlier.dataset.count || 1) + 1;
  element.dataset.count = String(count);
  element.dataset.first = earlier.dataset.first;
  const newest = Date.parse(element.querySelector("time")?.getAttribute("datetime") ?? "");
  const minutes = (newest - Date.parse(earlier.dataset.first)) / 60000;
  element.querySelector(".times").textContent =
    `${count} times in ${minutes >= 1 ? `${Math.round(minutes)} min` : "under a minute"}`;
  earlier.remove();
}

// After a gap, the page is fetched again and its main part swapped in place.
async function refreshPage() {
  const response = await fetch(location.href, { credentials: "same-origin" });
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.querySelector("main");
  if (!fresh) return;
  const keep = document.getElementById("notice")?.textContent;
  document.querySelector("main").replaceWith(fresh);
  if (keep) say(keep);
}

function onMessage(event) {
  const message = JSON.parse(event.data);
  if (message.type === "snapshot") {
    const hadGap = lastSeq !== null;
    lastSeq = message.seq;
    if (hadGap) refreshPage();
    return;
  }
  if (message.type === "log") {
    if (message.id === following) appendLog(message.data.lines);
    // Shown: the server may send the next batch (it sends a few ahead, then waits).
    socket?.send(JSON.stringify({ type: "logs.ack", replica: message.id }));
    return;
  }
  if (message.type === "error") {
    lastError = message.data.detail;
    say(message.data.detail, true);
    return;
  }
  if (lastSeq !== null && message.seq > lastSeq + 1) {
    // Messages from several processes may overtake each other: wait a moment first.
    clearTimeout(gapTimer);
    gapTimer = setTimeout(() => socket?.send(JSON.stringify({ type: "resync" })), 1000);
  }
  if (lastSeq === null || message.seq > lastSeq) lastSeq = message.seq;
  apply(message);
  document.dispatchEvent(new CustomEvent("fleet:applied", { detail: message }));
}

function connect() {
  lastError = null;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}${document.body.dataset.socket}`);
  socket.addEventListener("message", onMessage);
  socket.addEventListener("open", () => {
    document.body.dataset.live = "on";
    if (following !== null) socket.send(JSON.stringify({ type: "logs.follow", replica: following }));
  });
  socket.addEventListener("close", (event) => {
    // 4401: logged out elsewhere; 4403: no role that may read. Trying again cannot help.
    if (event.code === 4401 || event.code === 4403) {
      document.body.dataset.live = "denied";
      return;
    }
    // 4429: this user has as many sockets open as they may (other tabs, consoles). Say
    // why, and try again only after a while, when one of those may have closed.
    if (event.code === 4429) {
      document.body.dataset.live = "refused";
      say(`Live updates are off: ${event.reason || lastError || "too many open pages"}`, true);
      setTimeout(connect, REFUSED_RETRY_MS);
      return;
    }
    document.body.dataset.live = "off";
    setTimeout(connect, 1000); // the snapshot on reconnect puts the page right
  });
}

function appendLog(lines) {
  const pre = document.getElementById("log-lines");
  if (!pre || !lines.length) return;
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.append(`${lines.join("\n")}\n`);
  while (pre.textContent.length > 200000) pre.firstChild?.remove();
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

function followLogs(replicaId, slot) {
  following = replicaId;
  const panel = document.getElementById("logs");
  panel.hidden = false;
  document.getElementById("log-slot").textContent = slot;
  document.getElementById("log-lines").textContent = "";
  // The page shows one log: stop the others first (a socket may follow only a few at once).
  socket?.send(JSON.stringify({ type: "logs.stop" }));
  socket?.send(JSON.stringify({ type: "logs.follow", replica: replicaId }));
  panel.scrollIntoView({ block: "nearest" });
}

function desiredReplicas(service) {
  const row = document.querySelector(`[data-live="service"][data-id="${CSS.escape(service)}"]`);
  return Number(row?.dataset.replicas ?? document.getElementById("replica-count")?.value ?? 0);
}

// KEY=value lines; with `bareRemoves`, a line that is just KEY means "remove KEY" (null).
function parseEnv(text, bareRemoves = false) {
  const env = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf("=");
    if (at === -1 && bareRemoves) {
      env[line] = null;
      continue;
    }
    if (at < 1) throw new Error(`"${line}" is not KEY=value`);
    env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

// A webhook's secret URL, shown once (the server keeps only its hash); the list fetched anew.
async function showWebhook(made) {
  document.getElementById("webhook-url").textContent = made.url;
  document.getElementById("webhook-secret").hidden = false;
  const response = await fetch(location.href, { credentials: "same-origin" });
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  const list = fresh.getElementById("webhook-list");
  if (response.ok && list) document.getElementById("webhook-list").replaceWith(list);
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-act]");
  if (!button) return;
  // Every URL comes from the page (rendered with Django's {% url %}), none is built here.
  const form = button.closest("form[data-service]");
  const service = form?.dataset.service;
  switch (button.dataset.act) {
    case "scale-up":
    case "scale-down": {
      const target = Math.max(0, desiredReplicas(service) + (button.dataset.act === "scale-up" ? 1 : -1));
      const count = document.getElementById("replica-count");
      if (count) count.value = target;
      await act(button, form.dataset.url, { replicas: target }, `Scaling ${service} to ${target}…`);
      break;
    }
    case "rollback":
      await act(button, button.dataset.url, {}, `Rolling ${service} back…`);
      break;
    case "restart":
      await act(button, button.dataset.url, {}, `Restarting replica ${button.dataset.slot}…`);
      break;
    case "image-check":
      await act(button, button.dataset.url, {}, `Checking the image of ${button.dataset.service}…`);
      break;
    case "image-update":
      await act(button, button.dataset.url, { digest: button.dataset.digest }, `Deploying ${button.dataset.short}…`);
      break;
    case "release-hold":
      await act(button, button.dataset.url, {}, `Lifting the hold on ${button.dataset.node}…`);
      break;
    case "webhook-rotate": {
      const made = await act(button, button.dataset.url, {}, `Rotating webhook ${button.dataset.name}…`);
      if (made) await showWebhook(made);
      break;
    }
    case "webhook-revoke":
      if (await act(button, button.dataset.url, {}, `Revoking webhook ${button.dataset.name}…`, "DELETE")) {
        button.closest("tr").remove();
      }
      break;
    case "logs":
      followLogs(Number(button.dataset.replica), button.dataset.slot);
      break;
    case "logs-stop":
      following = null;
      socket?.send(JSON.stringify({ type: "logs.stop" }));
      document.getElementById("logs").hidden = true;
      break;
  }
});

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-form]");
  if (!form) return;
  event.preventDefault();
  const service = form.dataset.service;
  const button = form.querySelector("button[type=submit]");
  if (form.dataset.form === "availability") {
    const choice = event.submitter;
    const node = form.dataset.node;
    const done = await act(
      choice,
      form.dataset.url,
      { availability: choice.value },
      `Setting ${node} to ${choice.value}…`,
      "PATCH",
    );
    if (done) {
      for (const other of form.querySelectorAll("button[name=availability]")) {
        const current = other.value === done.availability;
        other.disabled = current;
        other.setAttribute("aria-pressed", String(current));
      }
    }
    return;
  }
  if (form.dataset.form === "create") {
    const port = form.elements.port.value;
    const body = {
      name: form.elements.name.value.trim(),
      image: form.elements.image.value.trim(),
      replicas: Number(form.elements.replicas.value),
      ports: port ? [{ container: Number(port) }] : [],
    };
    const created = await act(button, form.dataset.url, body, `Creating ${body.name}…`);
    // data-page is the page of a service named "x": the new service's page differs in its name.
    if (created) location.assign(form.dataset.page.replace(/[^/]+\/$/, `${encodeURIComponent(created.name)}/`));
  } else if (form.dataset.form === "webhook") {
    const name = form.elements.name.value.trim();
    const made = await act(button, form.dataset.url, { name }, `Making webhook ${name}…`);
    if (made) {
      form.reset();
      await showWebhook(made);
    }
  } else if (form.dataset.form === "scale") {
    const replicas = Number(form.elements.replicas.value);
    await act(button, form.dataset.url, { replicas }, `Scaling ${service} to ${replicas}…`);
  } else if (form.dataset.form === "deploy") {
    let env, secrets;
    try {
      env = parseEnv(form.elements.env.value);
      secrets = parseEnv(form.elements.secrets.value, true);
    } catch (error) {
      say(`Not done: ${error.message}`, true);
      return;
    }
    const body = { image: form.elements.image.value.trim(), env };
    if (Object.keys(secrets).length) body.secrets = secrets;
    const done = await act(button, form.dataset.url, body, `Deploying ${body.image}…`);
    if (done) {
      // Sent and sealed: do not leave the values on the page.
      form.elements.secrets.value = "";
      const names = Object.keys(done.spec.secrets);
      document.getElementById("deploy-secrets-hint").textContent =
        `${names.length ? `Set now: ${names.join(", ")}.` : "None set."} Values are stored encrypted and never shown.`;
    }
  }
});

connect();
