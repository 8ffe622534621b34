// driftwatch web UI: alert timeline (live), containers, one container, rules.
// Every string from the agent (process names, paths, container names, rule output) is
// attacker-influenced: it is only ever put in the page with textContent / text nodes.
"use strict";

const state = {
  token: sessionStorage.getItem("dw-token") || "",
  alerts: [],
  lastId: 0,
  filters: { priority: "", rule: "", container: "", text: "" },
  rules: [],
  stream: null,
};

// --- DOM helpers: text only ---------------------------------------------------------------
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "href") e.setAttribute("href", v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const main = () => document.getElementById("main");
function show(...nodes) {
  main().replaceChildren(...nodes);
}
function msg(text, kind) {
  return el("div", { class: "msg " + (kind || "") }, text);
}
function field(a, name) {
  const v = (a.output_fields || {})[name];
  return v === undefined || v === null || v === "<NA>" ? "" : String(v);
}
function containerHref(id) {
  return "#/container/" + encodeURIComponent(id);
}
// The output without Falco's "HH:MM:SS.nnnnnnnnn: Priority " prefix: the row shows the time
// and priority in their own columns. Only the alert's own prefix is removed (Alert::message).
function message(a) {
  const prefix = (a.time || "").slice(11, 29) + ": " + a.priority + " ";
  return a.output.startsWith(prefix) ? a.output.slice(prefix.length) : a.output;
}
function prio(p) {
  return el("span", { class: "prio " + p }, p);
}

// --- API ------------------------------------------------------------------------------------
function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (state.token) h["Authorization"] = "Bearer " + state.token;
  return h;
}
async function askToken() {
  const d = document.getElementById("token");
  const input = document.getElementById("token-input");
  input.value = "";
  d.showModal();
  await new Promise((r) => d.addEventListener("close", r, { once: true }));
  state.token = input.value.trim();
  sessionStorage.setItem("dw-token", state.token);
}
async function api(path, opts) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await fetch(path, Object.assign({}, opts || {}, { headers: headers((opts || {}).headers) }));
    if (r.status === 401) {
      await askToken();
      continue;
    }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
    return body;
  }
  throw new Error("no valid token");
}

// --- live alerts (Server-Sent Events over fetch, so that the token header can be sent) ------
function setLive(on) {
  const l = document.getElementById("live");
  l.className = "live " + (on ? "on" : "off");
  l.textContent = on ? "live" : "offline";
}
async function follow() {
  for (;;) {
    try {
      const r = await fetch("/api/v1/alerts/stream?after_id=" + state.lastId, { headers: headers() });
      if (r.status === 401) {
        await askToken();
        continue;
      }
      if (!r.ok || !r.body) throw new Error("stream: " + r.status);
      setLive(true);
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = "message";
          let data = "";
          for (const line of chunk.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (event === "alert" && data) onAlert(JSON.parse(data));
        }
      }
    } catch (e) {
      console.warn(e);
    }
    setLive(false);
    await new Promise((r) => setTimeout(r, 2000));
  }
}
function onAlert(a) {
  if (a.id <= state.lastId) return;
  state.lastId = a.id;
  state.alerts.unshift(a);
  if (state.alerts.length > 2000) state.alerts.length = 2000;
  const tbody = document.getElementById("alert-rows");
  if (tbody && matches(a)) {
    const row = alertRow(a);
    row.classList.add("new");
    tbody.prepend(row);
    updateCount();
  }
}

// --- timeline -------------------------------------------------------------------------------
const PRIORITIES = ["Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"];
function matches(a) {
  const f = state.filters;
  if (f.priority && PRIORITIES.indexOf(a.priority) > PRIORITIES.indexOf(f.priority)) return false;
  if (f.rule && a.rule !== f.rule) return false;
  if (f.container) {
    const c = f.container.toLowerCase();
    if (!field(a, "container.name").toLowerCase().includes(c) && !field(a, "container.id").startsWith(c)) return false;
  }
  if (f.text) {
    const t = f.text.toLowerCase();
    if (!(a.output + " " + a.rule + " " + field(a, "proc.exepath")).toLowerCase().includes(t)) return false;
  }
  return true;
}
function alertRow(a) {
  const cid = field(a, "container.id");
  const cname = field(a, "container.name") || cid;
  const exe = field(a, "proc.exepath") || field(a, "fd.name") || field(a, "drift.path");
  return el("tr", { "data-id": a.id },
    el("td", { class: "mono dim time", title: a.time }, a.time.slice(0, 10) + " " + a.time.slice(11, 23)),
    el("td", {}, prio(a.priority)),
    el("td", {}, a.rule),
    el("td", {}, cid && cid !== "host" ? el("a", { href: containerHref(cid) }, cname) : el("span", { class: "dim" }, "host")),
    el("td", { class: "mono" }, el("span", { class: "proc-name" }, field(a, "proc.name")), " ", el("span", { class: "exe" }, exe)),
    el("td", { class: "output" }, field(a, "drift.kind") ? el("span", { class: "badge" }, field(a, "drift.kind")) : null,
      field(a, "drift.action") ? el("span", { class: "badge" }, field(a, "drift.action")) : null, message(a)));
}
function updateCount() {
  const n = document.getElementById("alert-count");
  const rows = document.getElementById("alert-rows");
  if (n && rows) n.textContent = rows.children.length + " shown";
}
function renderRows() {
  const tbody = document.getElementById("alert-rows");
  if (!tbody) return;
  tbody.replaceChildren(...state.alerts.filter(matches).slice(0, 500).map(alertRow));
  updateCount();
}
async function timeline() {
  const f = state.filters;
  const input = (key, ph) => el("input", { id: "f-" + key, placeholder: ph, value: f[key],
    oninput: (e) => { f[key] = e.target.value; renderRows(); } });
  const prioSel = el("select", { id: "f-priority", onchange: (e) => { f.priority = e.target.value; renderRows(); } },
    el("option", { value: "" }, "any priority"), PRIORITIES.map((p) => el("option", { value: p }, p + " or worse")));
  prioSel.value = f.priority;
  const ruleSel = el("select", { id: "f-rule", onchange: (e) => { f.rule = e.target.value; renderRows(); } },
    el("option", { value: "" }, "any rule"), state.rules.map((r) => el("option", { value: r.name }, r.name)));
  ruleSel.value = f.rule;
  show(
    el("h1", {}, "Alerts ", el("span", { id: "alert-count", class: "dim" })),
    el("div", { class: "filters" }, prioSel, ruleSel, input("container", "container name or id"), input("text", "search text")),
    el("table", { id: "timeline" },
      el("thead", {}, el("tr", {}, ["Time (UTC)", "Priority", "Rule", "Container", "Process", "Output"].map((h) => el("th", {}, h)))),
      el("tbody", { id: "alert-rows" })));
  renderRows();
}

// --- containers -----------------------------------------------------------------------------
function modeBadge(m) {
  return el("span", { class: "badge " + m }, m);
}
function counts(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return el("span", { class: "dim" }, "none");
  return el("span", { class: "counts" }, entries.map(([k, v]) => el("span", {}, k + ": " + v)));
}
async function containers() {
  show(el("h1", {}, "Containers"), msg("loading…"));
  const { containers } = await api("/api/v1/containers");
  show(el("h1", {}, "Containers ", el("span", { class: "dim" }, containers.length + " known")),
    el("table", { id: "containers" },
      el("thead", {}, el("tr", {}, ["Name", "Image", "Engine", "Kubernetes", "Mode", "State", "Alerts", "Verdicts", "Last alert"].map((h) => el("th", {}, h)))),
      el("tbody", {}, containers.map((c) => el("tr", {},
        el("td", {}, el("a", { href: containerHref(c.short_id) }, c.name || c.short_id)),
        el("td", { class: "mono" }, c.image),
        el("td", {}, c.engine),
        el("td", {}, c.k8s_pod ? c.k8s_namespace + "/" + c.k8s_pod : ""),
        el("td", {}, modeBadge(c.enforcement)),
        el("td", {}, c.running ? "running" : el("span", { class: "dim" }, "gone")),
        el("td", {}, String(c.drift.alerts)),
        el("td", {}, counts(c.drift.by_verdict)),
        el("td", {}, c.drift.last_alert ? [prio(c.drift.last_alert.priority), " ", c.drift.last_alert.rule] : ""))))));
}

function processTree(procs) {
  const byParent = new Map();
  const pids = new Set(procs.map((p) => p.pid));
  for (const p of procs) {
    const parent = pids.has(p.ppid) ? p.ppid : 0;
    if (!byParent.has(parent)) byParent.set(parent, []);
    byParent.get(parent).push(p);
  }
  const list = (parent) => el("ul", {}, (byParent.get(parent) || []).map((p) => el("li", {},
    el("span", { class: p.verdicts.length || p.rules.length ? "mono drifted" : "mono" }, p.exe || p.name),
    " ", el("span", { class: "dim mono" }, "pid " + p.pid + " · " + p.cmdline.join(" ")),
    p.verdicts.map((v) => el("span", { class: "badge" }, v)),
    p.rules.length ? el("span", { class: "dim" }, " ← " + p.rules.join(", ")) : null,
    byParent.has(p.pid) ? list(p.pid) : null)));
  return el("div", { class: "tree", id: "proc-tree" }, procs.length ? list(0) : el("span", { class: "dim" }, "no processes (not running)"));
}

function confirmAction(title, text, okLabel) {
  const d = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  d.returnValue = "";
  d.showModal();
  return new Promise((r) => d.addEventListener("close", () => r(d.returnValue === "ok"), { once: true }));
}

const ACTIONS = {
  isolate: ["Isolate", "Cut all network traffic of {c} except loopback (nftables in its network namespace). Undo with Release."],
  release: ["Release", "Remove the network isolation of {c} and thaw it if frozen."],
  capture: ["Capture", "Write an evidence bundle of {c} (diff, drifted files, processes, sockets) on the agent's host."],
};

async function act(c, action) {
  const [label, text] = ACTIONS[action];
  const who = (c.name || c.short_id) + " (" + c.short_id + ")";
  if (!(await confirmAction(label + " " + who + "?", text.replace("{c}", who), label))) return;
  const out = document.getElementById("action-result");
  out.replaceChildren(msg(label + " in progress…"));
  try {
    const rec = await api("/api/v1/containers/" + encodeURIComponent(c.short_id) + "/" + action, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Driftwatch-Request": "1" },
      body: JSON.stringify({ confirm: true }),
    });
    out.replaceChildren(msg(label + ": " + rec.result + " — " + (rec.detail || "") + (rec.reason ? " — " + rec.reason : ""), rec.result === "ok" ? "ok" : "error"));
  } catch (e) {
    out.replaceChildren(msg(label + " failed: " + e.message, "error"));
  }
  setTimeout(() => route(), 300);
}

function actionsTable(actions) {
  if (!actions.length) return el("p", { class: "dim" }, "no actions taken");
  return el("table", { id: "actions" },
    el("thead", {}, el("tr", {}, ["Time (UTC)", "Action", "Result", "By", "Detail"].map((h) => el("th", {}, h)))),
    el("tbody", {}, actions.map((a) => el("tr", {},
      el("td", { class: "mono dim" }, a.time.replace("T", " ").slice(0, 19)),
      el("td", {}, a.action),
      el("td", {}, a.result),
      el("td", {}, a.playbook || "manual"),
      el("td", { class: "mono" }, [a.detail, a.reason].filter(Boolean).join("; "))))));
}

async function containerPage(id) {
  show(el("h1", {}, "Container"), msg("loading…"));
  let c;
  try {
    c = await api("/api/v1/containers/" + encodeURIComponent(id));
  } catch (e) {
    show(el("h1", {}, "Container"), msg(e.message, "error"));
    return;
  }
  const diffBox = el("div", { id: "diff" }, msg("computing the diff against the image…"));
  const alertsBox = el("tbody", { id: "container-alerts" });
  show(
    el("h1", {}, c.name || c.short_id, " ", modeBadge(c.enforcement), c.isolated ? el("span", { class: "badge isolated", id: "isolated" }, "isolated") : null),
    el("dl", { class: "grid", id: "container-info" },
      el("dt", {}, "id"), el("dd", { class: "mono" }, c.id),
      el("dt", {}, "image"), el("dd", { class: "mono", id: "image" }, c.image),
      el("dt", {}, "digest"), el("dd", { class: "mono" }, c.image_digest || "unknown"),
      el("dt", {}, "engine"), el("dd", {}, c.engine),
      el("dt", {}, "kubernetes"), el("dd", {}, c.k8s_pod ? c.k8s_namespace + "/" + c.k8s_pod : "—"),
      el("dt", {}, "enforcement"), el("dd", { id: "mode" }, c.enforcement),
      el("dt", {}, "network"), el("dd", {}, c.isolated === null ? "unknown" : c.isolated ? "isolated" : "normal"),
      el("dt", {}, "alerts"), el("dd", {}, String(c.drift.alerts), " ", counts(c.drift.by_priority)),
      el("dt", {}, "verdicts"), el("dd", {}, counts(c.drift.by_verdict))),
    el("div", { class: "actions" },
      el("button", { id: "btn-isolate", class: "danger", onclick: () => act(c, "isolate") }, "Isolate…"),
      el("button", { id: "btn-release", onclick: () => act(c, "release") }, "Release…"),
      el("button", { id: "btn-capture", onclick: () => act(c, "capture") }, "Capture evidence…")),
    el("div", { id: "action-result" }),
    el("div", { class: "cols" },
      el("section", {}, el("h2", {}, "Processes"), processTree(c.processes)),
      el("section", {}, el("h2", {}, "Diff against the image"), diffBox)),
    el("h2", {}, "Alerts"),
    el("table", {}, el("thead", {}, el("tr", {}, ["Time (UTC)", "Priority", "Rule", "Container", "Process", "Output"].map((h) => el("th", {}, h)))), alertsBox),
    el("h2", {}, "Actions taken"),
    actionsTable(c.actions));
  api("/api/v1/alerts?limit=200&container=" + encodeURIComponent(c.short_id))
    .then((r) => alertsBox.replaceChildren(...r.alerts.map(alertRow)))
    .catch((e) => alertsBox.replaceChildren(el("tr", {}, el("td", {}, e.message))));
  try {
    const d = await api("/api/v1/containers/" + encodeURIComponent(c.short_id) + "/diff?limit=300");
    const n = d.counts || {};
    diffBox.replaceChildren(
      el("p", { id: "diff-summary", class: "counts" }, d.drifted ? el("b", { class: "drifted" }, "drifted ") : "no drift ",
        Object.entries(n).filter(([, v]) => typeof v === "number").map(([k, v]) => el("span", {}, k.replace(/_/g, " ") + ": " + v))),
      el("table", { id: "diff-entries" },
        el("thead", {}, el("tr", {}, ["Change", "Kind", "Path"].map((h) => el("th", {}, h)))),
        el("tbody", {}, (d.files || []).map((f) => el("tr", {},
          el("td", {}, f.change), el("td", {}, f.kind || ""), el("td", { class: "mono" }, f.path))))),
      ...(d.truncated ? [el("p", { class: "dim" }, "first " + d.files.length + " of " + d.total_files + " entries")] : []));
  } catch (e) {
    diffBox.replaceChildren(msg("diff: " + e.message, "error"));
  }
}

// --- rules ----------------------------------------------------------------------------------
async function rulesPage() {
  const { rules } = await api("/api/v1/rules");
  state.rules = rules;
  // An inactive rule can never be true on driftwatch's events; its row says why.
  const inactive = rules.filter((r) => !r.active).length;
  show(el("h1", {}, "Rules ", el("span", { class: "dim" }, rules.length + " loaded, " + inactive + " inactive")),
    el("table", { id: "rules" },
      el("thead", {}, el("tr", {}, ["Rule", "Priority", "Tags", "Enabled", "Active", "Source"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rules.map((r) => el("tr", { class: r.active ? "" : "inactive" },
        el("td", {}, el("div", {}, r.name), el("div", { class: "dim" }, r.desc)),
        el("td", {}, prio(r.priority)),
        el("td", {}, r.tags.map((t) => el("span", { class: "badge" }, t))),
        el("td", {}, r.enabled ? "yes" : el("span", { class: "dim" }, "no")),
        el("td", {}, r.active ? "yes" : el("span", { class: "dim inactive-reason" }, "no: " + r.inactive_reason)),
        el("td", { class: "mono dim" }, r.source_file))))));
}

// --- routing --------------------------------------------------------------------------------
async function route() {
  const h = location.hash || "#/";
  const nav = h.startsWith("#/containers") || h.startsWith("#/container/") ? "containers" : h.startsWith("#/rules") ? "rules" : "timeline";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.nav === nav);
  try {
    if (h.startsWith("#/container/")) await containerPage(decodeURIComponent(h.slice(12)));
    else if (h === "#/containers") await containers();
    else if (h === "#/rules") await rulesPage();
    else await timeline();
  } catch (e) {
    show(msg(e.message, "error"));
  }
}

async function start() {
  try {
    const [{ alerts }, { rules }] = await Promise.all([api("/api/v1/alerts?limit=500"), api("/api/v1/rules")]);
    state.alerts = alerts;
    state.lastId = alerts.length ? alerts[0].id : 0;
    state.rules = rules;
  } catch (e) {
    show(msg(e.message, "error"));
  }
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "1";
  follow();
}
document.addEventListener("DOMContentLoaded", start);
