// bulk_sync review page: edit a cell -> the row is checked again on the server; page through the
// rows that did not sync; send the fixed rows. Plain JavaScript, no build step.
"use strict";
const csrf = document.querySelector('meta[name="csrf"]').content;

async function post(url, data) {
  const resp = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
    body: JSON.stringify(data),
    credentials: "same-origin",
  });
  return resp.json();
}

function rowCells(tr) {
  return [...tr.querySelectorAll("td[data-col] input")].map((i) => i.value);
}

async function recheck(tr) {
  const grid = document.getElementById("grid");
  const result = await post(`/runs/${grid.dataset.run}/check`, {index: Number(tr.dataset.index), cells: rowCells(tr)});
  const msg = tr.querySelector("td.msg");
  tr.querySelectorAll("td.badcell").forEach((td) => td.classList.remove("badcell"));
  if (result.status === "valid") {
    tr.classList.add("fixed"); tr.classList.remove("bad");
    msg.textContent = "fixed: valid ";
    if (result.payload) {  // the body that would be sent, behind a click (as text: never as HTML)
      const more = document.createElement("details");
      const label = document.createElement("summary");
      label.textContent = "payload";
      const body = document.createElement("pre");
      body.textContent = JSON.stringify(result.payload, null, 2);
      more.append(label, body);
      msg.append(more);
    }
  } else {
    tr.classList.add("bad"); tr.classList.remove("fixed");
    msg.textContent = `${result.error_type || result.status}: ${result.message || ""}`;
    for (const col of result.columns) {
      const td = [...tr.querySelectorAll("td[data-col]")].find((c) => c.dataset.col === col);
      if (td) td.classList.add("badcell");
    }
  }
  document.getElementById("fixed").textContent = document.querySelectorAll("#grid tr.fixed:not(.skipped)").length;
}

function wire(tbody) {
  tbody.querySelectorAll("td[data-col] input").forEach((input) => {
    input.addEventListener("change", () => recheck(input.closest("tr")));
  });
  tbody.querySelectorAll("input.skip").forEach((box) => {
    box.addEventListener("change", async () => {
      const tr = box.closest("tr");
      const grid = document.getElementById("grid");
      if (box.checked) {
        await post(`/runs/${grid.dataset.run}/check`, {index: Number(tr.dataset.index), cells: rowCells(tr), skip: true});
        tr.classList.add("skipped");
      } else {
        tr.classList.remove("skipped");
        await recheck(tr);
      }
    });
  });
}

async function goTo(page) {
  const pager = document.querySelector(".pager");
  const pages = Number(pager.dataset.pages);
  if (page < 0 || page >= pages) return;
  const resp = await fetch(`/runs/${pager.dataset.run}/rows?page=${page}`, {credentials: "same-origin"});
  const html = await resp.text();
  const holder = document.createElement("table");
  holder.innerHTML = html;  // server-rendered and escaped by the template
  const grid = document.getElementById("grid");
  grid.replaceChild(holder.querySelector("tbody"), grid.querySelector("tbody"));
  wire(grid.querySelector("tbody"));
  document.getElementById("page").textContent = page + 1;
  pager.dataset.page = page;
}

document.addEventListener("DOMContentLoaded", () => {
  const grid = document.getElementById("grid");
  if (!grid) return;
  wire(grid.querySelector("tbody"));
  document.querySelectorAll(".pager button").forEach((b) => {
    b.addEventListener("click", () => goTo(Number(document.querySelector(".pager").dataset.page || 0) + Number(b.dataset.go)));
  });
  document.getElementById("send").addEventListener("click", async () => {
    const result = await post(`/runs/${grid.dataset.run}/send`, {});
    document.getElementById("sent").textContent = result.error || `dropped ${result.rows} row(s) into the inbox as ${result.dropped}: the watcher sends them`;
  });
});
