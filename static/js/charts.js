// Usage charts on node and service pages, drawn with uPlot (static/vendor/uplot-1.6.32).
// A range's series come from the metrics API; while it shows the last hour, each sampling
// round that arrives over the socket (a "metrics" message per node, via fleet.js's
// "fleet:applied" event) is appended. Longer ranges are fetched again every few minutes.

/* global uPlot */

const COLORS = ["#0b5cad", "#1a7f37", "#9a6700", "#8250df", "#b42318", "#0a7e8c", "#bf3989", "#57606a"];
const LIVE_RANGE = 3600; // seconds: ranges up to this read raw samples and follow the socket
const REFETCH_MS = 300000;
const charts = new Map(); // section element -> its state
const FLOOR = { cpu: 10, memory: 1 << 20, network: 1024 };

const percent = (value) => (value == null ? "–" : `${value.toFixed(1)}%`);
function bytes(value) {
  if (value == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(value) >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${value.toFixed(i ? 1 : 0)} ${units[i]}`;
}
const rate = (value) => (value == null ? "–" : `${bytes(value)}/s`);

function replicaName(replica) {
  return `${replica.service}.${replica.slot}`;
}

// [label, values] pairs for one chart from an API answer.
function seriesOf(kind, chart, body) {
  const total = body.total;
  if (chart === "network") {
    return [
      ["received", total.net_rx],
      ["sent", total.net_tx],
    ];
  }
  const sum = kind === "node" ? `all replicas on this node` : "all replicas";
  return [[sum, total[chart]], ...body.replicas.map((r) => [replicaName(r), r[chart]])];
}

function options(chart, labels, width) {
  const format = chart === "cpu" ? percent : chart === "memory" ? bytes : rate;
  return {
    width,
    height: 200,
    // From zero, and never flatter than 10% of a core, 1 MiB or 1 KiB/s (an idle chart reads as idle).
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max((max ?? 0) * 1.1, FLOOR[chart])] } },
    axes: [{}, { values: (u, ticks) => ticks.map(format), size: 80 }],
    series: [
      {},
      ...labels.map((label, i) => ({
        label,
        stroke: COLORS[i % COLORS.length],
        width: i === 0 && chart !== "network" ? 2.5 : 1.2,
        value: (u, v) => format(v),
        spanGaps: false,
      })),
    ],
  };
}

function draw(state, body) {
  state.body = body;
  // Rounds up to the answer's last step with data are in it: only later ones are appended.
  const filled = body.times.filter((_, i) => Object.values(body.total).some((v) => v[i] != null));
  state.loadedUntil = filled.length ? filled[filled.length - 1] : 0;
  for (const holder of state.section.querySelectorAll("[data-chart]")) {
    const chart = holder.dataset.chart;
    const pairs = seriesOf(state.kind, chart, body);
    const data = [body.times, ...pairs.map(([, values]) => values)];
    const width = Math.max(280, holder.clientWidth || state.section.clientWidth - 32);
    state.plots.get(chart)?.destroy();
    holder.replaceChildren();
    state.plots.set(chart, new uPlot(options(chart, pairs.map(([label]) => label), width), data, holder));
  }
  const points = body.times.length;
  state.section.dataset.points = String(points);
  state.status.textContent =
    `${points} points, one per ${body.step} s (${body.source === "raw" ? "samples" : "5-minute rollups"})` +
    (state.range <= LIVE_RANGE ? "; new samples appear as they are taken." : ".");
}

async function load(state) {
  const until = Math.floor(Date.now() / 1000);
  const url = `${state.url}?since=${until - state.range}&until=${until}`;
  state.status.textContent = "Loading…";
  try {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail ?? JSON.stringify(body));
    draw(state, body);
  } catch (error) {
    state.status.textContent = `Could not load the series: ${error.message}`;
  }
}

// One node's round from the socket, folded into the series of the last hour.
function append(state, round) {
  const body = state.body;
  if (!body || state.range > LIVE_RANGE) return;
  let mine = round.replicas;
  if (state.kind === "service") mine = mine.filter((r) => r.service === state.name);
  else if (round.node !== state.name) return;
  if (state.kind === "service" && !mine.length) return;
  const known = new Map(body.replicas.map((r, i) => [replicaName(r), i]));
  if (mine.some((r) => !known.has(replicaName(r)))) {
    load(state); // a replica the chart has no line for yet: draw again from the API
    return;
  }
  const t = Math.floor(round.t / body.step) * body.step;
  if (t <= state.loadedUntil) return; // the API's answer has this round already
  const arrays = () => [
    ...Object.values(body.total),
    ...body.replicas.flatMap((r) => Object.values(r).filter(Array.isArray)),
  ];
  let at = body.times.indexOf(t);
  if (at === -1) {
    if (body.times.length && t < body.times[body.times.length - 1]) return; // late: skip it
    body.times.push(t);
    for (const values of arrays()) values.push(null);
    at = body.times.length - 1;
  }
  const add = (values, value) => {
    if (values && value != null) values[at] = (values[at] ?? 0) + value;
  };
  for (const r of mine) {
    const line = body.replicas[known.get(replicaName(r))];
    for (const key of ["cpu", "memory", "net_rx", "net_tx", "blk_read", "blk_write"]) {
      if (line[key]) line[key][at] = r[key];
      if (state.kind === "service") add(body.total[key], r[key]);
    }
  }
  if (state.kind === "node" && round.total) {
    for (const [key, value] of Object.entries(round.total)) if (body.total[key]) body.total[key][at] = value;
  }
  // Keep the window an hour long: points older than it leave on the left.
  const oldest = Math.floor(Date.now() / 1000) - state.range;
  while (body.times.length && body.times[0] < oldest) {
    body.times.shift();
    for (const values of arrays()) values.shift();
  }
  for (const holder of state.section.querySelectorAll("[data-chart]")) {
    const pairs = seriesOf(state.kind, holder.dataset.chart, body);
    state.plots.get(holder.dataset.chart)?.setData([body.times, ...pairs.map(([, values]) => values)]);
  }
  state.section.dataset.points = String(body.times.length);
  state.section.dataset.newest = String(t);
}

function setUp(section) {
  if (charts.has(section) || typeof uPlot === "undefined") return;
  const state = {
    section,
    kind: section.dataset.charts,
    name: section.dataset.name,
    url: section.dataset.url,
    range: Number(section.querySelector("[data-range][aria-pressed=true]")?.dataset.range ?? LIVE_RANGE),
    status: section.querySelector("[data-chart-status]"),
    plots: new Map(),
    body: null,
  };
  charts.set(section, state);
  state.timer = setInterval(() => state.range > LIVE_RANGE && load(state), REFETCH_MS);
  load(state);
}

function setUpAll() {
  for (const [section, state] of charts) {
    if (!section.isConnected) {
      clearInterval(state.timer);
      charts.delete(section);
    }
  }
  document.querySelectorAll("section[data-charts]").forEach(setUp);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("section[data-charts] button[data-range]");
  if (!button) return;
  const state = charts.get(button.closest("section[data-charts]"));
  if (!state) return;
  for (const other of state.section.querySelectorAll("button[data-range]")) {
    other.setAttribute("aria-pressed", String(other === button));
  }
  state.range = Number(button.dataset.range);
  load(state);
});

document.addEventListener("fleet:applied", (event) => {
  if (event.detail.type !== "metrics" || !event.detail.data) return;
  for (const state of charts.values()) append(state, event.detail.data);
});

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const state of charts.values()) {
      for (const [chart, plot] of state.plots) {
        const holder = state.section.querySelector(`[data-chart="${chart}"]`);
        plot.setSize({ width: Math.max(280, holder.clientWidth), height: 200 });
      }
    }
  }, 200);
});

// After a gap fleet.js swaps the page's main part: set up the charts it brought.
new MutationObserver(setUpAll).observe(document.body, { childList: true });
setUpAll();
