// The dashboard's script, served as is (no build step): renders the list from the page's JSON, follows
// GET /v1/events (read with fetch, reconnecting with Last-Event-ID; a reset reads the list again), filters with
// the /v1/services query syntax, and sends every call with the token typed in (kept in sessionStorage): the admin
// actions, and with --read-token the reads too (the page then comes with no data).
// Each service with a routing policy shows its split and its rollout, kept live by the routing events: an event
// carries the split and the rollout's state but not its schedule (step of steps, next step), so each one is
// followed by a read of GET /v1/routing/<name>; a reset reads GET /v1/routing again with the list.
// Every value reaches the page as text (textContent), never as markup.
export const SCRIPT = String.raw`
const $ = (id) => document.getElementById(id);
const initial = JSON.parse($("initial").textContent);
const state = { entries: new Map(), outputs: new Map(), policies: new Map(), params: new URLSearchParams(), index: initial.index, source: null };
for (const e of initial.services) state.entries.set(e.id, e);
for (const [name, p] of Object.entries(initial.routing || {})) state.policies.set(name, p);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? s + " s ago" : s < 3600 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
}

function render() {
  const byName = new Map();
  for (const e of [...state.entries.values()].sort((a, b) => (a.name + "\0" + a.id < b.name + "\0" + b.id ? -1 : 1))) {
    if (!byName.has(e.name)) byName.set(e.name, []);
    byName.get(e.name).push(e);
  }
  // A policy set before its service registers (a deployment's first step) still shows, unless the filter asks
  // for something about instances (a tag, a health) that a service without any cannot have.
  for (const name of state.policies.keys()) if (!byName.has(name) && policyOnlyShown(name)) byName.set(name, []);
  const sections = [...byName].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, list]) =>
    h("article", { class: "service", "data-service": name },
      h("h2", {}, name, " ", h("span", { class: "muted" }, list.length + (list.length === 1 ? " instance" : " instances"))),
      routing(name),
      list.map(instance)));
  $("services").replaceChildren(...(sections.length ? sections : [h("p", { class: "muted" }, "No instances match.")]));
}

function policyOnlyShown(name) {
  const keys = [...state.params.keys()];
  return keys.every((k) => k === "name") && (keys.length === 0 || state.params.getAll("name").some((n) => n.toLowerCase() === name));
}

/** A split as people say it: "^2 90% · ^3 10%", or "blue-green: ^3" when one selector takes it all. */
function splitText(split) {
  const on = split.filter((s) => s.weight > 0);
  if (on.length === 1) return "blue-green: " + on[0].version;
  return on.map((s) => s.version + " " + s.weight + "%").join(" \u00b7 ");
}

/**
 * The rollout to show beside a policy: one running, or the one that set the split in force (it ended at the
 * policy's time); one that ended before the policy was set by hand is history, as the routing events treat it.
 * A policy known only from an event holds that event's rollout (the same rule, applied by the server).
 */
function shownRollout(p) {
  const r = p.rollout;
  if (!r) return null;
  return p.fromEvent || r.state === "running" || r.endedAt === p.updatedAt ? r : null;
}

function until(at) {
  const s = Math.round((at - Date.now()) / 1000);
  return new Date(at).toLocaleTimeString() + (s > 0 ? " (in " + s + " s)" : " (due)");
}

const STATES = { running: "rollout running", completed: "rollout completed", "rolled-back": "rolled back", cancelled: "rollout cancelled" };
function routing(name) {
  const p = state.policies.get(name.toLowerCase());
  if (!p) return null;
  const r = shownRollout(p);
  let rollout = null;
  if (r) {
    const to = p.split.find((s) => s.version === r.to);
    const weight = to ? to.weight : r.percent;
    const steps = Array.isArray(r.steps) ? r.steps : null;
    rollout = h("div", { class: "row rollout", "data-state": r.state, "data-step": steps ? r.step + 1 : undefined },
      h("span", { class: "badge " + r.state }, STATES[r.state] || r.state),
      h("span", {}, r.from + " -> " + r.to),
      steps ? h("span", { class: "step" }, (r.state === "rolled-back" ? "at step " : "step ") + (r.step + 1) + " / " + steps.length) : null,
      weight === undefined ? null : h("span", { class: "weight" }, r.to + " at " + weight + "%"),
      r.state === "running" && typeof r.nextAt === "number" ? h("span", { class: "muted" }, "next step ", h("span", { class: "due", "data-at": r.nextAt }, until(r.nextAt))) : null,
      r.reason ? h("span", { class: "reason" }, r.reason) : null);
  }
  return h("div", { class: "routing", "data-routing": name },
    h("div", { class: "row" }, h("span", { class: "muted" }, "routing"), h("span", { class: "split" }, splitText(p.split))),
    rollout);
}

function instance(e) {
  const out = state.outputs.get(e.id);
  const meta = Object.entries(e.metadata || {});
  return h("div", { class: "instance", "data-id": e.id, "data-health": e.healthStatus, "data-maintenance": e.maintenance ? "on" : "off" },
    h("div", { class: "row" },
      h("span", { class: "id" }, e.id),
      h("span", { class: "badge health " + e.healthStatus }, e.healthStatus),
      e.maintenance ? h("span", { class: "badge maint", title: e.maintenance.reason }, "maintenance" + (e.maintenance.reason ? ": " + e.maintenance.reason : "")) : null,
      h("code", {}, e.address + ":" + e.port),
      h("span", { class: "muted" }, "v" + e.version + " on " + e.nodeId)),
    e.tags.length ? h("div", { class: "row" }, e.tags.map((t) => h("span", { class: "tag" }, t))) : null,
    meta.length ? h("div", { class: "row muted" }, meta.map(([k, v]) => h("span", {}, k + "=" + v))) : null,
    h("div", { class: "row muted check" }, "last check: " + ago(e.lastHealthCheck), out ? h("pre", { class: "output" }, out.output) : null),
    h("div", { class: "row actions" },
      h("button", { type: "button", "data-action": "maintenance", onclick: () => act(e.id, "maintenance") }, e.maintenance ? "End maintenance" : "Maintenance"),
      h("button", { type: "button", "data-action": "check", onclick: () => act(e.id, "check") }, "Check now"),
      h("button", { type: "button", "data-action": "deregister", onclick: () => act(e.id, "deregister") }, "Deregister")));
}

/** Who said what the message shows: a read in the background (a reload) clears its own words and the token's
 * prompt, never an action's answer the user has not read yet (blurring the token field to click a button fires its
 * change, and that reload used to finish after the click's 403 and wipe it). */
let saidBy = "";
function say(text, by) {
  $("message").textContent = text || "";
  saidBy = text ? by || "" : "";
}

function logEvent(ev) {
  const i = ev.instance;
  let what = ev.type;
  if (ev.type === "health") what += ": " + ev.previousStatus + " -> " + ev.healthStatus + (ev.reason ? " (" + ev.reason + ")" : "");
  if (ev.type === "maintenance") what += ev.enabled ? " on" + (ev.reason ? ": " + ev.reason : "") : " off";
  if (ev.type === "registered" && ev.replaced) what = "re-registered";
  if (ev.type === "routing") {
    what += ": " + (ev.split ? ev.split.map((s) => s.version + " " + s.weight + "%").join(", ") : "no policy");
    if (ev.rollout) what += " (rollout to " + ev.rollout.to + " " + ev.rollout.state + (ev.rollout.reason ? ": " + ev.rollout.reason : "") + ")";
  }
  const who = i ? i.id : ev.name;
  const li = h("li", { "data-type": ev.type }, h("span", { class: "muted" }, new Date().toLocaleTimeString() + " "), who ? h("b", {}, who) : null, " " + what);
  const list = $("events");
  list.prepend(li);
  while (list.children.length > 100) list.lastChild.remove();
}

async function api(method, path, body) {
  const headers = { accept: "application/json" };
  const token = $("token").value.trim();
  if (token) headers.authorization = "Bearer " + token;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error((data.error && data.error.message) || "HTTP " + res.status), { status: res.status });
  return { data, index: Number(res.headers.get("x-index")) };
}

async function act(id, action) {
  const e = state.entries.get(id);
  try {
    if (action === "maintenance") await api("PUT", "/v1/services/" + encodeURIComponent(id) + "/maintenance", e && e.maintenance ? { enable: false } : { enable: true, reason: "from the dashboard" });
    if (action === "check") {
      const { data } = await api("POST", "/v1/services/" + encodeURIComponent(id) + "/check");
      state.outputs.set(id, { output: data.output, at: data.checkedAt });
      render();
    }
    if (action === "deregister") {
      if (!confirm("Deregister " + id + "?")) return;
      await api("DELETE", "/v1/services/" + encodeURIComponent(id));
    }
    say("");
  } catch (err) {
    say(action + " " + id + ": " + err.message, "action");
  }
}

/** The filter box: the query syntax of /v1/services, pairs split by spaces or '&'. */
function paramsOf(text) {
  const params = new URLSearchParams();
  for (const part of text.split(/[\s&]+/).filter(Boolean)) {
    const at = part.indexOf("=");
    params.append(at === -1 ? "name" : part.slice(0, at), at === -1 ? part : part.slice(at + 1));
  }
  return params;
}

// The policies' reads may cross each other and the events: a read's answer is kept only if no later read or
// event has spoken for that name since it was sent.
let asked = 0;
let askedAll = 0;
const askedFor = new Map();

async function loadPolicies() {
  const seq = (askedAll = ++asked);
  const { data } = await api("GET", "/v1/routing");
  if (askedAll !== seq) return;
  const next = new Map(Object.entries(data.policies));
  for (const [name, s] of askedFor) {
    if (s < seq) continue;
    if (state.policies.has(name)) next.set(name, state.policies.get(name));
    else next.delete(name);
  }
  state.policies = next;
}

async function loadPolicy(name) {
  const seq = ++asked;
  askedFor.set(name, seq);
  const current = () => askedFor.get(name) === seq && askedAll < seq;
  try {
    const { data } = await api("GET", "/v1/routing/" + encodeURIComponent(name));
    if (!current()) return;
    state.policies.set(name, { split: data.split, updatedAt: data.updatedAt, rollout: data.rollout });
  } catch (err) {
    // Gone since the event (404): so is its panel. Any other failure keeps what the event said.
    if (!current() || err.status !== 404) return;
    state.policies.delete(name);
  }
  render();
}

/** Reads the list (and, unless only the filtered set is in question, the policies) again. */
async function reload(withPolicies = true) {
  const policies = withPolicies ? loadPolicies().then(() => "", (err) => "routing: " + err.message) : Promise.resolve("");
  let problem = "";
  try {
    const query = state.params.toString();
    const { data, index } = await api("GET", "/v1/services" + (query ? "?" + query : ""));
    state.entries = new Map(data.services.map((e) => [e.id, e]));
    state.index = index;
  } catch (err) {
    problem = "filter: " + err.message;
  }
  const trouble = await policies;
  if (problem || trouble || saidBy !== "action") say(problem || trouble);
  render();
  return problem === "";
}

let reconcile = null;
function live(on, text) {
  $("live").textContent = text || (on ? "live" : "reconnecting");
  $("live").className = "live " + (on ? "on" : "off");
}

/**
 * An event's rollout with the steps the page already knows for it (the one running, same from and to: a new
 * one cannot start while one runs), so a step shows without waiting for the read; the next step's time waits for it.
 */
function withSchedule(r, before) {
  const old = before && before.rollout;
  if (!r || !old || old.state !== "running" || !Array.isArray(old.steps) || old.from !== r.from || old.to !== r.to) return r;
  const at = r.state === "rolled-back" ? old.step : old.steps.indexOf(r.percent);
  return at === -1 ? r : { ...r, steps: old.steps, step: at };
}

function onEvent(type, data) {
  const ev = JSON.parse(data);
  logEvent(ev);
  if (ev.type === "reset") return void reload();
  if (ev.type === "routing") {
    // At once what the event says, then the schedule from the policy's own read.
    if (ev.split === null) {
      state.policies.delete(ev.name);
      askedFor.set(ev.name, ++asked);
    } else {
      state.policies.set(ev.name, { split: ev.split, rollout: withSchedule(ev.rollout, state.policies.get(ev.name)), fromEvent: true });
      void loadPolicy(ev.name);
    }
    return void render();
  }
  if (ev.type === "deregistered") state.entries.delete(ev.instance.id);
  else state.entries.set(ev.instance.id, ev.instance);
  if (ev.type === "health" && ev.reason) state.outputs.set(ev.instance.id, { output: ev.reason, at: ev.instance.lastHealthCheck });
  render();
  // A filtered view: an event may be about an instance leaving the set; the server's answer decides.
  if (state.params.toString()) {
    clearTimeout(reconcile);
    reconcile = setTimeout(() => reload(false), 150);
  }
}

// The stream is read with fetch, not EventSource, so it carries the token as a header (EventSource sends none,
// and a token in the URL would land in logs and history); it reconnects with Last-Event-ID as EventSource does.
const TYPES = new Set(["registered", "deregistered", "health", "maintenance", "routing", "reset"]);
async function follow() {
  if (state.source) state.source.abort();
  const abort = new AbortController();
  state.source = abort;
  const q = new URLSearchParams(state.params);
  q.set("after", String(state.index));
  let lastId = null;
  let delay = 2000;
  while (!abort.signal.aborted) {
    try {
      const headers = { accept: "text/event-stream" };
      const token = $("token").value.trim();
      if (token) headers.authorization = "Bearer " + token;
      if (lastId !== null) headers["last-event-id"] = lastId;
      const res = await fetch("/v1/events?" + q.toString(), { headers, signal: abort.signal, cache: "no-store" });
      if (res.status === 401 || res.status === 403) {
        const data = await res.json().catch(() => ({}));
        live(false, "needs a token");
        say("events: " + ((data.error && data.error.message) || "HTTP " + res.status));
        return; // a new token starts it again
      }
      if (!res.ok || !res.body) throw new Error("HTTP " + res.status);
      live(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "", type = "", data = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let nl;
        while ((nl = buffer.indexOf("\n")) !== -1) {
          let line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line.endsWith("\r")) line = line.slice(0, -1);
          if (line === "") {
            if (data.length && TYPES.has(type)) onEvent(type, data.join("\n"));
            type = "";
            data = [];
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon === -1 ? line : line.slice(0, colon);
          let v = colon === -1 ? "" : line.slice(colon + 1);
          if (v.startsWith(" ")) v = v.slice(1);
          if (field === "event") type = v;
          else if (field === "data") data.push(v);
          else if (field === "id") lastId = v;
          else if (field === "retry" && /^\d+$/.test(v)) delay = Number(v);
        }
      }
    } catch (err) {
      if (abort.signal.aborted) return;
    }
    live(false);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

let typing = null;
$("filter").addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(async () => {
    state.params = paramsOf($("filter").value);
    if (await reload()) follow();
  }, 250);
});
$("controls").addEventListener("submit", (e) => e.preventDefault());
$("token").value = sessionStorage.getItem("hd-token") || "";
$("token").addEventListener("change", async () => {
  sessionStorage.setItem("hd-token", $("token").value);
  // Reads need a token on this server: the list and the stream start (again) with this one.
  if (initial.locked && (await reload())) follow();
});
setInterval(render, 30000); // "n s ago" stays true
// The next step's countdown, every second: its text only, so nothing under the pointer is replaced.
setInterval(() => {
  for (const el of document.querySelectorAll(".due")) el.textContent = until(Number(el.getAttribute("data-at")));
}, 1000);
render();
if (!initial.locked) follow();
else if ($("token").value.trim()) reload().then((ok) => ok && follow());
else {
  live(false, "needs a token");
  say("This server needs a token to read: enter it above.");
}
`;
