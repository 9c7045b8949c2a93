// The Chorus dashboard: plain JavaScript over the API (no build chain, no external assets).
// Everything shown is built with textContent: agent ids and details come from agents and are never HTML.
"use strict";

const state = { token: null, role: null, canAct: false, status: null, agents: [], seq: 0, feed: null, page: null, refreshTimer: null };
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

const time = (iso) => (iso ? new Date(iso).toISOString().slice(11, 19) : "-");

function toast(text) {
  const t = $("#toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), 4000);
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.body ? { "Content-Type": "application/json" } : {}) };
  const resp = await fetch(path, { ...options, headers });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.detail || `${resp.status} ${resp.statusText}`);
  return body;
}

// --- token -------------------------------------------------------------------------------

function tokenFromUrl() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    localStorage.setItem("chorus-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.hash.replace(/&?token=[^&]+/, "").replace(/^#$/, ""));
  }
  return localStorage.getItem("chorus-token");
}

async function login() {
  state.token = tokenFromUrl();
  if (!state.token) return showLogin("");
  try {
    const me = await api("/whoami");
    state.role = me.role;
    state.canAct = me.role === "operate" && me.can_sign;
    $("#who").textContent = `${me.subject} (${me.role})` + (me.role === "operate" && !me.can_sign ? ", API cannot sign: read only" : "");
    $("#run").textContent = `run ${me.run_id}`;
    $("#login").hidden = true;
    route();
  } catch (e) {
    showLogin(e.message);
  }
}

function showLogin(message) {
  $("#login").hidden = false;
  $("#fleet-page").hidden = $("#agent-page").hidden = true;
  $("#login-error").textContent = message;
}

$("#token-save").addEventListener("click", () => {
  localStorage.setItem("chorus-token", $("#token-input").value.trim());
  login();
});

// --- pages -------------------------------------------------------------------------------

function route() {
  const m = location.hash.match(/agent=([^&]+)/);
  state.page = m ? { agent: decodeURIComponent(m[1]) } : { fleet: true };
  $("#fleet-page").hidden = !state.page.fleet;
  $("#agent-page").hidden = !state.page.agent;
  refresh();
}
window.addEventListener("hashchange", route);

async function refresh() {
  clearTimeout(state.refreshTimer);
  try {
    if (state.page.fleet) await refreshFleet();
    else await refreshAgent(state.page.agent);
  } catch (e) {
    toast(e.message);
  }
  // Trust moves without a decision too: a slow poll keeps the grid honest; decisions arrive by the feed.
  state.refreshTimer = setTimeout(refresh, 3000);
}

let pendingRefresh = null;
function refreshSoon() {
  if (!pendingRefresh) pendingRefresh = setTimeout(() => { pendingRefresh = null; refresh(); }, 30);
}

async function refreshFleet() {
  const [status, agents, conflicts] = await Promise.all([api("/status"), api("/agents"), api("/conflicts")]);
  if (!state.feed) connectFeed(Math.max(0, status.ledger_seq - RECENT_BACKLOG));
  state.status = status;
  renderSummary(status);
  renderGrid(agents);
  renderLists(status);
  renderConflicts(conflicts);
}

function renderLists(status) {
  renderHeld("#quarantined", "#q-count", status.quarantined, (h) => actionButton("release", `/agents/${enc(h.agent_id)}/release`, h.agent_id));
  renderHeld("#pending", "#p-count", status.pending, (h) => [
    actionButton("approve", `/approvals/${enc(h.decision_id)}/approve`, h.agent_id),
    actionButton("reject", `/approvals/${enc(h.decision_id)}/reject`, h.agent_id),
  ]);
}

// A decision from the feed moves its agent between the lists at once; the full refresh follows.
function applyDecision(e) {
  const s = state.status;
  if (!s || !state.page.fleet) return;
  s.quarantined = s.quarantined.filter((h) => h.agent_id !== e.agent_id);
  s.pending = s.pending.filter((h) => h.agent_id !== e.agent_id);
  const row = { agent_id: e.agent_id, decision_id: e.event_id, reason: e.reason, since: e.occurred_at,
                until: e.until, trust: e.trust, detail: e.detail };
  if (e.action === "quarantine") s.quarantined.push(row);
  else if (e.action === "pending_approval") s.pending.push(row);
  renderLists(s);
}

const enc = encodeURIComponent;

function renderSummary(s) {
  const card = (label, value, cls = "") => el("div", { class: `card ${cls}` }, el("b", {}, String(value)), label);
  $("#summary").replaceChildren(
    card("agents seen", s.agents_seen),
    card("quarantined", s.quarantined.length, "red"),
    card("pending approval", s.pending.length, "purple"),
    card("trust warning (<60)", s.warning, "amber"),
    card("anomalies, last min", s.anomalies_last_minute),
    card("conflicts, last min", s.conflicts_last_minute),
    card("dead letters", s.dead_letters),
    card("as of (event time)", time(s.as_of)),
  );
}

function cellClass(a) {
  if (a.status === "quarantined") return "quarantined";
  if (a.status === "pending") return "pending";
  return a.trust < 30 ? "low" : a.trust < 60 ? "warning" : "ok";
}

function renderGrid(agents) {
  const sorted = [...agents].sort((a, b) => a.trust - b.trust || a.agent_id.localeCompare(b.agent_id));
  $("#grid").replaceChildren(...sorted.map((a) =>
    el("a", { class: `cell ${cellClass(a)}`, href: `#agent=${enc(a.agent_id)}`, title: `${a.agent_id}: trust ${a.trust.toFixed(0)}, ${a.status}`,
              dataset: { agent: a.agent_id, status: a.status } })));
}

function renderHeld(list, counter, rows, buttons) {
  $(counter).textContent = `(${rows.length})`;
  if (!rows.length) return $(list).replaceChildren(el("li", { class: "empty" }, "none"));
  $(list).replaceChildren(...rows.map((h) => el("li", { dataset: { agent: h.agent_id, decision: h.decision_id } },
    el("a", { class: "agent", href: `#agent=${enc(h.agent_id)}` }, h.agent_id),
    el("span", { class: "reason" }, h.reason),
    el("span", { class: "muted" }, `since ${time(h.since)}${h.until ? ` until ${time(h.until)}` : ""}`),
    el("span", { class: "muted" }, h.detail || ""),
    ...(state.canAct ? [].concat(buttons(h)) : []))));
}

function actionButton(kind, path, agent) {
  return el("button", { class: kind, dataset: { agent }, onclick: async (ev) => {
    ev.target.disabled = true;
    try {
      await api(path, { method: "POST", body: JSON.stringify({ note: "from the dashboard" }) });
      toast(`${kind} sent for ${agent}`);
    } catch (e) {
      toast(`${kind} failed: ${e.message}`);
      ev.target.disabled = false;
    }
  } }, kind);
}

function renderConflicts(rows) {
  $("#conflicts tbody").replaceChildren(...rows.map((r) => el("tr", {},
    el("td", {}, r.resource), el("td", {}, String(r.predictions)), el("td", {}, r.max_risk.toFixed(2)),
    el("td", {}, `${time(r.latest.occurred_at)} risk ${r.latest.risk.toFixed(2)} ${r.latest.failure_mode}` +
      (r.latest.most_aggressive ? `, most aggressive ${r.latest.most_aggressive}` : "")))));
}

// --- the live feed -----------------------------------------------------------------------------

const RECENT_BACKLOG = 500; // ledger records replayed into "recent decisions" on first load
const FEED_TYPES = ["quarantine_decision", "operator_command", "anomaly", "conflict_prediction", "dead_letter"];

function connectFeed(after) {
  const url = `/feed?access_token=${enc(state.token)}&after=${after}&types=${FEED_TYPES.join(",")}`;
  const source = new EventSource(url); // reconnects by itself, sending Last-Event-ID
  state.feed = source;
  source.onopen = () => { $("#live").className = "badge on"; $("#live").textContent = "live"; };
  source.onerror = () => { $("#live").className = "badge off"; $("#live").textContent = "reconnecting"; };
  for (const type of FEED_TYPES) source.addEventListener(type, (msg) => onFeed(JSON.parse(msg.data)));
}

function onFeed(item) {
  const e = item.event;
  const who = e.agent_id || e.resource || e.source_topic || "";
  let what = "";
  if (e.event_type === "quarantine_decision") what = `${e.action} (${e.reason}) ${e.detail || ""}`;
  else if (e.event_type === "anomaly") what = `${e.severity} ${e.metric} z=${e.zscore.toFixed(1)}`;
  else if (e.event_type === "conflict_prediction") what = `risk ${e.risk.toFixed(2)} ${e.failure_mode}${e.most_aggressive ? " aggressor " + e.most_aggressive : ""}`;
  else if (e.event_type === "operator_command") what = `${e.command} by ${e.operator}`;
  else what = e.error || "";
  const feed = $("#feed");
  feed.prepend(el("li", { class: e.event_type, dataset: { seq: item.seq } }, `${time(e.occurred_at)} ${e.event_type} ${who}: ${what}`));
  while (feed.children.length > 200) feed.lastChild.remove();
  if (e.event_type === "quarantine_decision") applyDecision(e);
  if (e.event_type === "quarantine_decision" || e.event_type === "operator_command") refreshSoon();
}

// --- one agent ------------------------------------------------------------------------------------

async function refreshAgent(agent) {
  const story = await api(`/agents/${enc(agent)}`);
  $("#agent-title").textContent = `${story.agent_id}: trust ${story.trust == null ? "-" : story.trust.toFixed(0)} (${story.level || "-"}), ${story.status}`;
  $("#agent-title").dataset.status = story.status;
  const actions = [];
  if (state.canAct) {
    if (story.status === "free") actions.push(actionButton("quarantine", `/agents/${enc(agent)}/quarantine`, agent));
    else actions.push(actionButton("release", `/agents/${enc(agent)}/release`, agent));
  }
  $("#agent-actions").replaceChildren(...actions);
  renderChart(story.trust_history);
  $("#decisions").replaceChildren(...(story.decisions.length ? story.decisions.slice().reverse().map((d) =>
    el("div", { class: "decision", dataset: { action: d.action } },
      el("div", { class: "head" }, `${time(d.occurred_at)} ${d.action} (${d.reason})${d.until ? " until " + time(d.until) : ""}`),
      el("div", { class: "muted" }, d.detail || ""),
      chainList(d.chain))) : [el("p", { class: "muted" }, "no quarantine decisions")]));
  $("#healing").replaceChildren(...story.healing.slice(-50).reverse().map((h) => el("li", {}, h)));
  $("#anomalies").replaceChildren(...story.anomalies.slice(-50).reverse().map((a) => el("li", {}, `${time(a.occurred_at)} ${a.summary}`)));
  $("#agent-conflicts").replaceChildren(...story.conflicts.slice(-50).reverse().map((c) => el("li", {},
    `${time(c.occurred_at)} ${c.resource}: risk ${c.risk.toFixed(2)}, ${c.failure_mode}` +
    (c.aggressiveness != null ? `, aggressiveness ${c.aggressiveness.toFixed(2)}, share ${(100 * c.share).toFixed(0)}%` : ""))));
}

function chainList(node) {
  const ul = el("ul", { class: "chain" });
  for (const c of node.causes) {
    const li = el("li", {}, el("span", { class: "t" }, `${time(c.occurred_at)} `), c.summary);
    if (c.causes.length || c.more_causes) li.append(chainList(c));
    ul.append(li);
  }
  if (node.more_causes) ul.append(el("li", { class: "muted" }, `+${node.more_causes} more causes`));
  return ul;
}

function renderChart(history) {
  const W = 600, H = 220, P = 30;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(svg.namespaceURI, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text) n.textContent = text;
    svg.append(n);
  };
  const y = (score) => H - P - (score / 100) * (H - 2 * P);
  for (const [score, colour] of [[60, "#e0a020"], [30, "#d9534f"]]) {
    add("line", { x1: P, x2: W - 10, y1: y(score), y2: y(score), stroke: colour, "stroke-dasharray": "4 3" });
    add("text", { x: 2, y: y(score) + 4, "font-size": 10, fill: colour }, String(score));
  }
  add("line", { x1: P, x2: P, y1: y(100), y2: y(0), stroke: "#ccc" });
  if (!history.length) {
    add("text", { x: W / 2 - 60, y: H / 2, fill: "#889" }, "no trust changes: 100");
  } else {
    const t0 = Date.parse(history[0].occurred_at), t1 = Date.parse(history[history.length - 1].occurred_at);
    const x = (iso) => P + (t1 > t0 ? (Date.parse(iso) - t0) / (t1 - t0) : 0.5) * (W - P - 10);
    let d = `M ${x(history[0].occurred_at)} ${y(history[0].before)}`;
    for (const c of history) d += ` L ${x(c.occurred_at)} ${y(c.before)} L ${x(c.occurred_at)} ${y(c.after)}`;
    add("path", { d, fill: "none", stroke: "#2a6f9b", "stroke-width": 2 });
    add("text", { x: P, y: H - 8, "font-size": 10, fill: "#889" }, time(history[0].occurred_at));
    add("text", { x: W - 60, y: H - 8, "font-size": 10, fill: "#889" }, time(history[history.length - 1].occurred_at));
  }
  $("#chart").replaceChildren(svg);
}

login();
