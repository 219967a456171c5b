// The overview: tiles that count every row, tables filtered and sorted in place, kept
// right as live changes come (fleet.js sends fleet:applied for each it puts on the page).
function filterTable(form) {
  const body = document.querySelector(`tbody[data-table="${form.dataset.filterFor}"]`);
  if (!body) return;
  const words = form.querySelector("input[type=search]").value.toLowerCase().split(/\s+/).filter(Boolean);
  const status = form.querySelector("select").value;
  for (const row of body.rows) {
    const states = (row.dataset.states || "").split(" ");
    const text = (row.dataset.search || "").toLowerCase();
    row.hidden = Boolean(status && !states.includes(status)) || !words.every((word) => text.includes(word));
  }
}

function sortTable(table) {
  const key = table.dataset.sortKey;
  if (!key) return;
  const body = table.tBodies[0];
  const attribute = `sort${key[0].toUpperCase()}${key.slice(1)}`;
  const value = (row) => row.dataset[attribute] ?? "";
  const direction = table.dataset.sortDirection === "descending" ? -1 : 1;
  const rows = [...body.rows].sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    const numeric = x !== "" && y !== "" && !Number.isNaN(Number(x)) && !Number.isNaN(Number(y));
    return direction * (numeric ? Number(x) - Number(y) : x.localeCompare(y));
  });
  // Only rows out of place move, and with moveBefore where the browser has it: a row moved
  // by insertBefore loses the focus of a control in it.
  const move = body.moveBefore ? body.moveBefore.bind(body) : body.insertBefore.bind(body);
  rows.forEach((row, at) => {
    if (body.rows[at] !== row) move(row, body.rows[at]);
  });
}

function rolloutItem(row) {
  const item = document.createElement("li");
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = Number(row.dataset.progress);
  bar.setAttribute("aria-label", `${row.dataset.id} rollout progress`);
  item.append(row.querySelector("th a").cloneNode(true), ` revision ${row.dataset.revision} `, bar, ` ${row.dataset.progress}%`);
  return item;
}

function recount() {
  for (const tile of document.querySelectorAll("[data-count-table]")) {
    const rows = document.querySelectorAll(`tbody[data-table="${tile.dataset.countTable}"] tr`);
    const count = [...rows].filter((row) => (row.dataset.states || "").split(" ").includes(tile.dataset.countState)).length;
    tile.querySelector(".n").textContent = String(count);
    tile.classList.toggle("zero", count === 0);
  }
  const rollouts = document.getElementById("rollouts");
  if (!rollouts) return;
  const items = [...document.querySelectorAll('tbody[data-table="service"] tr[data-progress]')].map(rolloutItem);
  if (!items.length) {
    const none = document.createElement("li");
    none.className = "muted";
    none.textContent = "none in progress";
    items.push(none);
  }
  rollouts.replaceChildren(...items);
}

function refreshOverview() {
  document.querySelectorAll("form[data-filter-for]").forEach(filterTable);
  document.querySelectorAll("table[data-sortable]").forEach(sortTable);
  recount();
}

for (const type of ["input", "change"]) {
  document.addEventListener(type, (event) => {
    const form = event.target.closest("form[data-filter-for]");
    if (form) filterTable(form);
  });
}
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.sort");
  if (!button) return;
  const table = button.closest("table");
  const again = table.dataset.sortKey === button.dataset.sort && table.dataset.sortDirection !== "descending";
  table.dataset.sortKey = button.dataset.sort;
  table.dataset.sortDirection = again ? "descending" : "ascending";
  for (const th of table.tHead.querySelectorAll("th")) th.removeAttribute("aria-sort");
  button.closest("th").setAttribute("aria-sort", table.dataset.sortDirection);
  sortTable(table);
});
document.addEventListener("fleet:applied", (event) => {
  if (["node", "service"].includes(event.detail.type)) refreshOverview();
});
