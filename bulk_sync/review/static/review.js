// bulk_sync review page: edit a cell -> the row is checked again on the server and stored with a
// version; page through the rows that did not sync; send the fixed rows. Plain JavaScript, no build.
// What the page shows fixed is what Send sends: Send first keeps the cell being edited, waits for
// every check still on its way, then sends the versions shown (the server refuses a stale one).
// Every request that fails says so on the page, in words (never parsed blindly as JSON).
// A cell is text until it is focused (Tab, a click): then it gets an input, and keeps it (a page of
// 100 rows holds 4,000 cells or more; as inputs, the browser takes twice as long to show them).
"use strict";
const csrf = document.querySelector('meta[name="csrf"]').content;
const pending = new Map(); // row index -> the promise of its last check (a row's checks go in order)

class Failed extends Error {
  constructor(message, status, data) {
    super(message);
    this.status = status;
    this.data = data || {};
  }
}

function reviewer() {
  try { return localStorage.getItem("bulk_sync_reviewer") || ""; } catch (e) { return ""; }
}

function said(status, text) {
  const words = (text || "").replace(/^\d{3}:\s*/, "").trim().slice(0, 300);
  if (status === 403) return `Refused: ${words || "this page's session is not valid"}.`;
  if (status === 404) return `Not found: ${words || "it was moved or deleted"}. Reload the runs list.`;
  if (status === 413) return "The file is larger than this server takes (--max-upload-mb).";
  if (status >= 500) return `The review server failed: ${words || "see its log"}. Nothing was changed: try again.`;
  return `The server refused this (${status}): ${words || "reload the page and try again"}.`;
}

async function call(url, options) {
  let resp;
  try {
    resp = await fetch(url, {credentials: "same-origin", ...options});
  } catch (e) {
    throw new Failed("The review server did not answer: is `bulk-sync serve` still running? Nothing was kept; try again.", 0);
  }
  const type = resp.headers.get("Content-Type") || "";
  const text = await resp.text();
  let data = null;
  if (type.includes("application/json")) {
    try { data = JSON.parse(text); } catch (e) { data = null; }
  }
  if (!resp.ok) throw new Failed((data && data.error) || said(resp.status, text), resp.status, data);
  if (type.includes("application/json") && data === null) throw new Failed("The server's answer was cut off: try again.", resp.status);
  return data === null ? text : data;
}

function post(url, data) {
  return call(url, {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf, "X-Reviewer": encodeURIComponent(reviewer())},
    body: JSON.stringify(data),
  });
}

function action(name) {
  // where an action on the grid's rows goes: its run, and its error file when the run has several
  const grid = document.getElementById("grid");
  const file = grid.dataset.file ? `?file=${encodeURIComponent(grid.dataset.file)}` : "";
  return `/runs/${grid.dataset.run}/${name}${file}`;
}

function notice(text) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.hidden = !text;
}

function cellsOf(tr) {
  // in the file's column order (the page shows the columns with problems first)
  return [...tr.querySelectorAll("td[data-col]")].sort((a, b) => a.dataset.i - b.dataset.i);
}

function valueOf(td) {
  const input = td.querySelector("input");
  return input ? input.value : td.textContent;
}

function open(td) {
  // the cell's input, made from its text the first time it is focused (none in a row sent already)
  let input = td.querySelector("input");
  if (input || td.closest("tr").classList.contains("sent")) return input;
  input = document.createElement("input");
  input.value = td.textContent;
  input.defaultValue = input.value; // what the server holds (an input keeps no line break)
  input.dataset.was = input.value; // the value before this page's edits: offered to apply-to-all
  input.setAttribute("aria-label", td.dataset.col);
  td.textContent = "";
  td.append(input);
  td.classList.add("open");
  td.removeAttribute("tabindex"); // Tab and Shift+Tab now stop at the input only
  return input;
}

function counts(c) {
  if (!c) return;
  document.getElementById("fixed").textContent = c.fixed;
  document.getElementById("sentcount").textContent = c.sent;
}

function show(tr, result) {
  const msg = tr.querySelector("td.msg");
  tr.querySelectorAll("td.badcell").forEach((td) => td.classList.remove("badcell"));
  tr.classList.remove("stale", "failed");
  if (result.status === "valid") {
    tr.classList.add("fixed"); tr.classList.remove("bad");
    msg.textContent = "fixed: valid ";
    if (result.payload) {  // the body that would be sent, in the side panel (as text: never as HTML)
      const open = document.createElement("button");
      open.type = "button";
      open.className = "payload";
      open.textContent = "payload";
      const number = tr.querySelector("td.num").textContent;
      open.addEventListener("click", () => panel(`Row ${number}: the body that would be sent`, JSON.stringify(result.payload, null, 2)));
      msg.append(open);
    }
  } else {
    tr.classList.add("bad"); tr.classList.remove("fixed");
    msg.textContent = `${result.error_type || result.status}: ${result.said || result.message || ""}`;
    for (const col of result.columns || []) {
      const td = [...tr.querySelectorAll("td[data-col]")].find((c) => c.dataset.col === col);
      if (td) td.classList.add("badcell");
    }
  }
}

function panel(title, text) {
  const side = document.getElementById("panel");
  side.querySelector("h2").textContent = title;
  side.querySelector("pre").textContent = text;
  side.hidden = false;
}

function refused(tr, error) {
  tr.classList.add(error.status === 409 ? "stale" : "failed");
  tr.classList.remove("fixed");
  tr.classList.add("bad");
  tr.querySelector("td.msg").textContent = `not kept: ${error.message}`;
  notice(`Row ${tr.querySelector("td.num").textContent}: ${error.message}`);
}

async function save(tr, skip) {
  const tds = cellsOf(tr);
  const cells = tds.map(valueOf);
  const inputs = tds.map((td) => td.querySelector("input"));
  const changed = inputs.find((i) => i && i.value !== i.defaultValue);
  const body = {index: Number(tr.dataset.index), cells: cells, version: Number(tr.dataset.version), skip: skip};
  try {
    const result = await post(action("check"), body);
    tr.dataset.version = result.version;
    inputs.forEach((input, i) => { if (input) input.defaultValue = cells[i]; }); // what the server holds now
    tr.classList.toggle("skipped", skip);
    if (!skip) show(tr, result);
    counts(result.counts);
    if (changed && result.status === "valid") offer(changed.closest("td").dataset.col, changed, cells);
  } catch (error) {
    refused(tr, error);
  }
}

function queue(tr, skip) {
  // a row's checks run one after the other: each is made on the version the previous one stored
  const index = tr.dataset.index;
  const next = (pending.get(index) || Promise.resolve()).then(() => save(tr, skip));
  pending.set(index, next);
  next.finally(() => { if (pending.get(index) === next) pending.delete(index); });
  return next;
}

function edited(tr) {
  return [...tr.querySelectorAll("td[data-col] input")].some((i) => i.value !== i.defaultValue);
}

function toBadCell() {
  // the first bad cell in view, however far right its column is
  const bad = document.querySelector("#grid td.badcell");
  const wrap = document.querySelector(".gridwrap");
  if (bad && wrap) wrap.scrollLeft = Math.max(0, bad.offsetLeft - wrap.clientWidth / 2);
}

function wire(grid) {
  // once for the grid, whatever page its body shows (events bubble up to it)
  let pressed = null; // where a mouse press fell in a cell's text: the caret goes there
  grid.addEventListener("mousedown", (e) => {
    const td = e.target.closest("td[data-col]");
    pressed = null;
    if (!td || td.querySelector("input") || !document.caretRangeFromPoint) return;
    const at = document.caretRangeFromPoint(e.clientX, e.clientY);
    if (at && td.contains(at.startContainer)) pressed = at.startOffset;
  });
  grid.addEventListener("focusin", (e) => {
    const td = e.target;
    if (!td.matches("td[data-col]")) return;
    const input = open(td);
    if (!input) return;
    input.focus();
    if (pressed !== null) input.setSelectionRange(pressed, pressed);
    else input.select(); // reached by Tab: all of it, as Tab into an input does
    pressed = null;
  });
  grid.addEventListener("change", (e) => {
    const tr = e.target.closest("tr");
    if (e.target.matches("input.skip")) queue(tr, e.target.checked);
    else if (e.target.matches("td[data-col] input")) queue(tr, tr.querySelector("input.skip").checked);
  });
}

async function settle() {
  // every check on its way, then the cell being edited (no change event yet) and any edit not kept
  await Promise.all([...pending.values()]);
  document.querySelectorAll("#grid tbody tr:not(.sent)").forEach((tr) => {
    if (edited(tr)) queue(tr, tr.querySelector("input.skip").checked);
  });
  await Promise.all([...pending.values()]);
}

function query(page) {
  const pager = document.querySelector(".pager");
  const q = new URLSearchParams({page: page + 1});
  if (pager.dataset.file) q.set("file", pager.dataset.file);
  if (pager.dataset.error) q.set("error", pager.dataset.error);
  if (pager.dataset.column) q.set("column", pager.dataset.column);
  return q.toString();
}

function offer(column, input, cells) {
  // a fix that checked valid: offered for every row with the same old value in this column
  const form = document.getElementById("replace");
  if (!form || input.dataset.was === undefined) return;
  form.elements.column.value = column;
  form.elements.old.value = input.dataset.was;
  form.elements.new.value = cells[Number(input.closest("td").dataset.i)];
}

async function bulk(url, body, what) {
  const done = document.getElementById("bulkdone");
  done.textContent = `${what}…`;
  try {
    await settle();
    const result = await post(action(url), body);
    counts(result.counts);
    done.textContent = result.batch
      ? `${result.changed} row(s) changed (${result.valid} now valid, ${result.invalid} still not)` +
        (result.left ? `; ${result.left} changed in another window meanwhile, left as they were` : "")
      : `${result.undone} row(s) put back` + (result.left ? `; ${result.left} changed or sent since, left as they are` : "");
    if (result.batch) {
      const undo = document.createElement("button");
      undo.type = "button";
      undo.textContent = "Undo";
      undo.id = "undo";
      undo.addEventListener("click", () => bulk("undo", {batch: result.batch}, "putting back"));
      done.append(" ", undo);
    }
    await goTo(Number(document.querySelector(".pager").dataset.page || 0), true);
  } catch (error) {
    done.textContent = "";
    notice(`Nothing was changed: ${error.message}`);
  }
}

async function goTo(page, again) {
  const pager = document.querySelector(".pager");
  const pages = Number(pager.dataset.pages);
  if (page < 0 || page >= pages) return;
  try {
    if (!again) await settle();
    const html = await call(`/runs/${pager.dataset.run}/rows?${query(page)}`, {});
    const holder = document.createElement("table");
    holder.innerHTML = html;  // server-rendered and escaped by the template
    const grid = document.getElementById("grid");
    grid.replaceChild(holder.querySelector("tbody"), grid.querySelector("tbody"));
    document.getElementById("page").textContent = page + 1;
    document.getElementById("jump").value = page + 1;
    pager.dataset.page = page;
    history.replaceState(null, "", `?${query(page)}`);
    toBadCell();
    notice("");
  } catch (error) {
    notice(`Page ${page + 1} could not be shown: ${error.message}`);
  }
}

async function sendFixed(button) {
  const grid = document.getElementById("grid");
  const status = document.getElementById("sent");
  button.disabled = true;
  status.textContent = "keeping the last edits…";
  try {
    await settle();
    const shown = {};
    grid.querySelectorAll("tbody tr").forEach((tr) => { shown[tr.dataset.index] = Number(tr.dataset.version); });
    status.textContent = "sending…";
    const sendId = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const result = await post(action("send"), {send_id: sendId, shown: shown});
    status.textContent = `dropped ${result.rows} row(s) into the inbox as ${result.dropped}: the watcher sends them`;
    counts(result.counts);
    grid.querySelectorAll("tbody tr.fixed:not(.skipped)").forEach((tr) => {
      tr.classList.replace("fixed", "sent");
      tr.querySelector("td.msg").textContent = `sent in ${result.dropped}`;
      tr.querySelectorAll("input").forEach((i) => { i.readOnly = true; if (i.type === "checkbox") i.disabled = true; });
      tr.querySelectorAll("td[data-col]").forEach((td) => td.removeAttribute("tabindex"));
    });
    notice("");
  } catch (error) {
    status.textContent = "";
    notice(`Nothing was sent: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function askName() {
  const holder = document.getElementById("whoami");
  if (!holder) return;
  const name = reviewer();
  holder.textContent = "";
  if (name) {
    holder.textContent = `you: ${name} `;
    const change = document.createElement("button");
    change.textContent = "change";
    change.addEventListener("click", () => { localStorage.removeItem("bulk_sync_reviewer"); askName(); });
    holder.append(change);
    return;
  }
  const input = document.createElement("input");
  input.placeholder = "your name (for the audit log)";
  input.id = "reviewer";
  const ok = document.createElement("button");
  ok.textContent = "OK";
  ok.addEventListener("click", () => {
    if (input.value.trim()) { localStorage.setItem("bulk_sync_reviewer", input.value.trim()); askName(); }
  });
  holder.append(input, ok);
}

document.addEventListener("DOMContentLoaded", () => {
  askName();
  const grid = document.getElementById("grid");
  if (!grid) return;
  wire(grid);
  document.querySelectorAll(".pager button").forEach((b) => {
    b.addEventListener("click", () => goTo(Number(document.querySelector(".pager").dataset.page || 0) + Number(b.dataset.go)));
  });
  const send = document.getElementById("send");
  send.addEventListener("click", () => sendFixed(send));
  document.querySelector("#panel button.close").addEventListener("click", () => { document.getElementById("panel").hidden = true; });
  document.getElementById("jump").addEventListener("change", (e) => goTo(Number(e.target.value) - 1));
  const replace = document.getElementById("replace");
  replace.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = replace.elements;
    bulk("replace", {column: f.column.value, old: f.old.value, new: f.new.value}, "applying to every row");
  });
  const resend = document.getElementById("resend");
  if (resend) resend.addEventListener("click", () => bulk("resend", {}, "checking the rows to send again"));
  toBadCell();
});
