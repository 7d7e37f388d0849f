#include "mrkv/mr/job_page.hpp"

namespace mrkv::mr {

namespace {

constexpr std::string_view page = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mrkv jobs</title>
<link rel="icon" href="data:,">
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid #ddd; font-size: .9em; }
tr.job { cursor: pointer; } tr.job:hover { background: #f4f6fa; } tr.picked { background: #e8eefc; }
.bar { display: inline-block; width: 9em; height: .8em; background: #eee; border-radius: 3px; overflow: hidden;
       vertical-align: middle; }
.bar span { display: block; height: 100%; background: #3a7; }
.state-failed, .state-cancelled { color: #b22; } .state-done { color: #282; }
form { display: grid; grid-template-columns: max-content 1fr; gap: .4em .8em; max-width: 40em; }
form textarea { height: 4em; } #message { color: #b22; min-height: 1.2em; } .muted { color: #777; }
</style>
</head>
<body>
<h1>mrkv MapReduce jobs</h1>
<p id="message"></p>
<table id="jobs"><thead><tr><th>id</th><th>name</th><th>app</th><th>state</th><th>map</th><th>reduce</th>
<th>submitted</th><th></th></tr></thead><tbody></tbody></table>
<h2 id="detail-title">Tasks</h2>
<div id="detail" class="muted">Pick a job to see its tasks.</div>
<h2>Workers</h2>
<table id="workers"><thead><tr><th>id</th><th>host</th><th>last contact</th><th>running</th><th>tasks done</th>
</tr></thead><tbody></tbody></table>
<h2>Submit a job</h2>
<form id="submit">
<label for="app">app</label><input id="app" name="app" placeholder="wc, indexer or a plugin path">
<label for="mapper">or mapper</label><input id="mapper" name="mapper" placeholder="streaming mapper command">
<label for="reducer">reducer</label><input id="reducer" name="reducer" placeholder="streaming reducer command">
<label for="inputs">inputs</label><textarea id="inputs" name="inputs" placeholder="one path per line"></textarea>
<label for="reduce">reduce tasks</label><input id="reduce" name="reduce" type="number" min="1" value="10">
<label for="name">name</label><input id="name" name="name">
<span></span><button id="submit-button" type="submit">Submit</button>
</form>
<script>
"use strict";
let token = null;
let picked = null;
const $ = (id) => document.getElementById(id);

function text(value) { return value === null || value === undefined ? "" : String(value); }

function cell(row, content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.appendChild(content); else td.textContent = text(content);
  row.appendChild(td);
  return td;
}

function bar(counts) {
  const wrap = document.createElement("span");
  const b = document.createElement("span");
  b.className = "bar";
  const fill = document.createElement("span");
  const total = counts && counts.total ? counts.total : 0;
  const done = counts && counts.done ? counts.done : 0;
  fill.style.width = (total ? Math.round(100 * done / total) : 0) + "%";
  b.appendChild(fill);
  wrap.appendChild(b);
  wrap.appendChild(document.createTextNode(" " + done + "/" + total));
  wrap.dataset.done = done;
  wrap.dataset.total = total;
  return wrap;
}

async function call(method, path, body) {
  for (;;) {
    const headers = {};
    if (token) headers["Authorization"] = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
    if (response.status === 401 && !token) {
      token = window.prompt("This coordinator needs its token:");
      if (token) continue;
    }
    const reply = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(reply.error || ("HTTP " + response.status));
    return reply;
  }
}

function showJobs(jobs) {
  const body = $("jobs").tBodies[0];
  body.replaceChildren();
  for (const job of jobs) {
    const row = document.createElement("tr");
    row.className = "job" + (job.id === picked ? " picked" : "");
    row.id = "job-" + job.id;
    row.dataset.state = job.state;
    row.onclick = () => { picked = job.id; refresh(); };
    cell(row, job.id);
    cell(row, job.name);
    cell(row, job.app);
    cell(row, job.state).className = "state state-" + job.state;
    cell(row, bar(job.map)).className = "map";
    cell(row, bar(job.reduce)).className = "reduce";
    cell(row, job.submitted);
    const actions = cell(row, "");
    if (!["done", "failed", "cancelled"].includes(job.state)) {
      const button = document.createElement("button");
      button.textContent = "Cancel";
      button.className = "cancel";
      button.onclick = async (event) => {
        event.stopPropagation();
        try { await call("DELETE", "/v1/jobs/" + job.id); } catch (e) { $("message").textContent = e.message; }
        refresh();
      };
      actions.appendChild(button);
    }
    body.appendChild(row);
  }
}

function showDetail(job) {
  $("detail-title").textContent = "Tasks of job " + job.id + (job.name ? " (" + job.name + ")" : "");
  const box = $("detail");
  box.className = "";
  box.replaceChildren();
  if (job.error) {
    const p = document.createElement("p");
    p.className = "state-failed";
    p.textContent = job.error;
    box.appendChild(p);
  }
  if (job.outputs) {
    const p = document.createElement("p");
    p.textContent = "outputs: " + job.outputs.join(" ");
    box.appendChild(p);
  }
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const h of ["task", "state", "worker", "attempts", "failed", "seconds"]) cell(head, h);
  const body = table.createTBody();
  for (const kind of ["map", "reduce"]) {
    for (const t of (job.tasks && job.tasks[kind]) || []) {
      const row = body.insertRow();
      cell(row, kind + " " + t.task);
      cell(row, t.state);
      cell(row, t.worker);
      cell(row, t.attempts);
      cell(row, t.failed_attempts);
      cell(row, (t.duration_seconds || 0).toFixed(2));
    }
  }
  box.appendChild(table);
}

function showWorkers(workers) {
  const body = $("workers").tBodies[0];
  body.replaceChildren();
  for (const w of workers) {
    const row = body.insertRow();
    cell(row, w.id);
    cell(row, w.host);
    cell(row, w.last_contact_seconds_ago.toFixed(1) + " s ago");
    cell(row, w.running || "idle");
    cell(row, w.tasks_done);
  }
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const list = await call("GET", "/v1/jobs");
    showJobs(list.jobs);
    if (picked === null && list.jobs.length) picked = list.jobs[0].id;
    if (picked !== null) showDetail(await call("GET", "/v1/jobs/" + picked));
    showWorkers((await call("GET", "/v1/workers")).workers);
    // How many refreshes went through, for whoever watches the page (the browser test).
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || "0") + 1);
    if ($("message").dataset.kind === "poll") $("message").textContent = "";
  } catch (e) {
    $("message").textContent = "cannot reach the coordinator: " + e.message;
    $("message").dataset.kind = "poll";
  } finally {
    busy = false;
  }
}

$("submit").onsubmit = async (event) => {
  event.preventDefault();
  const job = {inputs: $("inputs").value.split(/[\n,]/).map((s) => s.trim()).filter((s) => s.length)};
  if ($("mapper").value.trim()) {
    job.mapper = $("mapper").value.trim();
    job.reducer = $("reducer").value.trim();
  } else {
    job.app = $("app").value.trim();
  }
  if ($("reduce").value) job.reduce = Number($("reduce").value);
  if ($("name").value.trim()) job.name = $("name").value.trim();
  try {
    const made = await call("POST", "/v1/jobs", job);
    picked = made.id;
    $("message").textContent = "submitted job " + made.id;
    $("message").dataset.kind = "submit";
  } catch (e) {
    $("message").textContent = "not submitted: " + e.message;
    $("message").dataset.kind = "submit";
  }
  refresh();
};

refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
)html";

}  // namespace

std::string_view job_page_html() noexcept { return page; }

}  // namespace mrkv::mr
