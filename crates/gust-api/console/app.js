// Gust's web console: a single-page app over /console/api (see crates/gust-api/src/console).
// Every value from the server is put into the page as text (never as HTML).
import uPlot from "./vendor/uPlot.esm.js";

const API = "/console/api/";
let csrf = "";
let timers = [];
let charts = [];
let observers = [];

// ---- helpers ---------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.Message)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") init.headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(API + path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { message: text }; }
  if (response.status === 401 && path !== "login") {
    location.assign("/console/login");
    throw new ApiError(401, data);
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const lambda = (path) => api("GET", "lambda/" + path);
const enc = encodeURIComponent;

function fmtDate(value) {
  if (!value) return "—";
  const d = typeof value === "number" ? new Date(value) : new Date(value);
  return isNaN(d) ? String(value) : d.toLocaleString();
}

function table(headers, rows, empty = "None") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

function dl(pairs) {
  return h("dl", {}, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

function panel(title, ...children) {
  return h("section", { class: "panel" }, h("h2", {}, title), ...children);
}

function failure(error) {
  return h("p", { class: "bad" }, error.message || String(error));
}

function clearPage() {
  timers.forEach(clearInterval);
  timers = [];
  charts.forEach((c) => c.destroy());
  charts = [];
  observers.forEach((o) => o.disconnect());
  observers = [];
}

function show(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
}

// ---- sign-in ---------------------------------------------------------------------------

function loginPage() {
  const message = h("p", { class: "bad", id: "login-error" });
  const form = h("form", { class: "panel login", id: "login" },
    h("h1", {}, "Sign in to Gust"),
    h("p", { class: "muted" }, "Use an access key this server is configured with."),
    h("label", { for: "akid" }, "Access key ID"),
    h("input", { type: "text", id: "akid", name: "accessKeyId", autocomplete: "username", required: true }),
    h("label", { for: "secret" }, "Secret access key"),
    h("input", { type: "password", id: "secret", name: "secretAccessKey", autocomplete: "current-password", required: true }),
    h("div", { class: "row" }, h("button", { type: "submit", id: "signin" }, "Sign in")),
    message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    try {
      await api("POST", "login", {
        accessKeyId: form.querySelector("#akid").value.trim(),
        secretAccessKey: form.querySelector("#secret").value,
      });
      location.assign("/console/#/functions");
    } catch (error) {
      message.textContent = error.message;
    }
  });
  show(form);
}

// ---- functions list --------------------------------------------------------------------

// CloudWatch answers timestamps as epoch seconds; ISO strings and milliseconds are taken
// too, so a change of encoding cannot silently empty the charts.
export function epochSeconds(t) {
  if (typeof t === "string") {
    const n = Number(t);
    return Number.isFinite(n) ? epochSeconds(n) : Math.floor(Date.parse(t) / 1000);
  }
  return t > 1e12 ? Math.floor(t / 1000) : Number(t);
}

// GetMetricData over [start, end) (epoch seconds) for queries {id, metric, stat, fn, period},
// in batches of at most 400 queries (the service takes 500) and following NextToken.
// Returns Id -> {timestamps, values}.
async function metricData(queries, start, end) {
  const merged = new Map();
  for (let i = 0; i < queries.length; i += 400) {
    const chunk = queries.slice(i, i + 400);
    const input = {
      StartTime: start, EndTime: end, ScanBy: "TimestampAscending",
      MetricDataQueries: chunk.map((q) => ({
        Id: q.id, ReturnData: true,
        MetricStat: {
          Metric: { Namespace: "AWS/Lambda", MetricName: q.metric,
                    Dimensions: q.fn ? [{ Name: "FunctionName", Value: q.fn }] : [] },
          Period: q.period, Stat: q.stat,
        },
      })),
    };
    let pages = 0;
    do {
      const data = await api("POST", "metrics/GetMetricData", input);
      for (const r of data.MetricDataResults || []) {
        const m = merged.get(r.Id) || { timestamps: [], values: [] };
        const values = r.Values || [];
        (r.Timestamps || []).forEach((t, k) => {
          m.timestamps.push(epochSeconds(t));
          m.values.push(Number(values[k]));
        });
        merged.set(r.Id, m);
      }
      input.NextToken = data.NextToken;
    } while (input.NextToken && ++pages < 20);
  }
  return merged;
}

// The last 24 hours, ending with the current minute's bucket.
function lastDay() {
  const now = Math.floor(Date.now() / 1000);
  const end = now - (now % 60) + 60;
  return [end - 86400, end];
}

// Per function, over the last 24 h: invocations in 1-minute buckets (their sum and the
// last bucket with any) and the errors' sum (one bucket).
export async function functionStats(names) {
  const [start, end] = lastDay();
  const queries = names.flatMap((name, i) => [
    { id: `i${i}`, metric: "Invocations", stat: "Sum", fn: name, period: 60 },
    { id: `e${i}`, metric: "Errors", stat: "Sum", fn: name, period: 86400 },
  ]);
  const stats = {};
  if (!queries.length) return stats;
  const results = await metricData(queries, start, end);
  names.forEach((name, i) => {
    const inv = results.get(`i${i}`) || { timestamps: [], values: [] };
    const err = results.get(`e${i}`) || { timestamps: [], values: [] };
    let last = null;
    inv.timestamps.forEach((t, k) => { if (inv.values[k] > 0) last = Math.max(last || 0, t); });
    stats[name] = {
      inv: inv.values.reduce((a, b) => a + b, 0),
      err: err.values.reduce((a, b) => a + b, 0),
      last,
    };
  });
  return stats;
}

// How long ago a 1-minute bucket starting at `seconds` was, in whole minutes.
function ago(seconds) {
  const minutes = Math.max(0, Math.floor(Date.now() / 60000) - Math.floor(seconds / 60));
  if (minutes === 0) return "this minute";
  if (minutes < 90) return `${minutes} min ago`;
  return `${Math.round(minutes / 60)} h ago`;
}

async function functionsPage() {
  const search = h("input", { type: "search", id: "search", placeholder: "Find functions by name" });
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  show(h("h1", {}, "Functions"), h("div", { class: "panel" }, search, body));
  let functions = [];
  try {
    let marker = "";
    do {
      const page = await lambda("2015-03-31/functions?MaxItems=50" + (marker ? "&Marker=" + enc(marker) : ""));
      functions.push(...page.Functions);
      marker = page.NextMarker || "";
    } while (marker);
  } catch (error) {
    body.replaceChildren(failure(error));
    return;
  }
  let stats = {};
  let metricsNote = null;
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const rows = functions
      .filter((f) => f.FunctionName.toLowerCase().includes(q))
      .map((f) => {
        const s = stats[f.FunctionName];
        return [
          h("a", { href: "#/functions/" + enc(f.FunctionName), class: "fn-link" }, f.FunctionName),
          h("span", { class: "badge " + (f.State || "") }, f.State || "—"),
          f.Runtime || f.PackageType || "—", `${f.MemorySize} MB`, fmtDate(f.LastModified),
          h("span", { class: "last-invocation", title: s && s.last ? fmtDate(s.last * 1000) : "" },
            s && s.last ? `${ago(s.last)} (${new Date(s.last * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })})` : "—"),
          h("span", { class: "error-rate" },
            s && s.inv ? `${((100 * s.err) / s.inv).toFixed(1)}% of ${s.inv}` : "—"),
        ];
      });
    body.replaceChildren(metricsNote || "", table(
      ["Name", "State", "Runtime", "Memory", "Last modified", "Last invocation (24 h)", "Error rate (24 h)"],
      rows, "No functions."));
  };
  search.addEventListener("input", render);
  render();
  try {
    stats = await functionStats(functions.slice(0, 1000).map((f) => f.FunctionName));
    body.dataset.stats = "loaded";
  } catch (error) {
    if (error.status === 401) return;
    metricsNote = h("p", { class: "muted" }, "Metrics not available: " + error.message);
    body.dataset.stats = "failed";
  }
  render();
}

// ---- one function ----------------------------------------------------------------------

function settle(promise) {
  return promise.then((value) => ({ value }), (error) => ({ error }));
}

async function functionPage(name) {
  const title = h("h1", {}, name);
  show(title, h("p", { class: "muted" }, "Loading…"));
  const f = `2015-03-31/functions/${enc(name)}`;
  const [fn, versions, aliases, reserved, provisioned, mappings, url, triggers] = await Promise.all([
    settle(lambda(f)),
    settle(lambda(f + "/versions")),
    settle(lambda(f + "/aliases")),
    settle(lambda(`2019-09-30/functions/${enc(name)}/concurrency`)),
    settle(lambda(`2019-09-30/functions/${enc(name)}/provisioned-concurrency?List=ALL`)),
    settle(lambda(`2015-03-31/event-source-mappings?FunctionName=${enc(name)}`)),
    settle(lambda(`2021-10-31/functions/${enc(name)}/url`)),
    settle(api("GET", "triggers/" + enc(name))),
  ]);
  if (fn.error) {
    show(title, failure(fn.error));
    return;
  }
  const c = fn.value.Configuration;
  const env = Object.keys((c.Environment && c.Environment.Variables) || {});
  const logging = c.LoggingConfig || {};
  const config = panel("Configuration", dl([
    ["ARN", c.FunctionArn], ["State", c.State], ["Runtime", c.Runtime || c.PackageType],
    ["Handler", c.Handler], ["Memory", `${c.MemorySize} MB`], ["Timeout", `${c.Timeout} s`],
    ["Architecture", (c.Architectures || []).join(", ")], ["Role", c.Role],
    ["Environment variables", env.length ? env.join(", ") : "none"],
    ["Log format", logging.LogFormat], ["Log group", logging.LogGroup || `/aws/lambda/${name}`],
    ["Last modified", fmtDate(c.LastModified)], ["Code size", `${c.CodeSize} bytes`],
  ]));
  const orError = (r, fnRender) => (r.error ? failure(r.error) : fnRender(r.value));
  const versionsPanel = panel("Versions", orError(versions, (v) => table(["Version", "Description", "Last modified"],
    v.Versions.map((x) => [x.Version, x.Description || "", fmtDate(x.LastModified)]))));
  const aliasesPanel = panel("Aliases", orError(aliases, (v) => table(["Alias", "Version", "Routing"],
    v.Aliases.map((a) => [a.Name, a.FunctionVersion,
      a.RoutingConfig && a.RoutingConfig.AdditionalVersionWeights
        ? Object.entries(a.RoutingConfig.AdditionalVersionWeights).map(([ver, w]) =>
          `${ver}: ${(w * 100).toFixed(1)}%`).join(", ") + ` (rest to ${a.FunctionVersion})`
        : "100%"]))));
  const concurrency = panel("Concurrency",
    dl([["Reserved", reserved.error ? reserved.error.message
      : (reserved.value && reserved.value.ReservedConcurrentExecutions != null
        ? reserved.value.ReservedConcurrentExecutions : "unreserved (account pool)")]]),
    orError(provisioned, (v) => table(["Qualifier", "Requested", "Allocated", "Status"],
      (v.ProvisionedConcurrencyConfigs || []).map((p) => [p.FunctionArn.split(":").pop(),
        p.RequestedProvisionedConcurrentExecutions, p.AllocatedProvisionedConcurrentExecutions,
        h("span", { class: "badge" }, p.Status)]), "No provisioned concurrency.")));
  const t = triggers.value || {};
  const triggersPanel = panel("Triggers",
    h("h3", {}, "Event source mappings"),
    orError(mappings, (v) => table(["Source", "State", "Batch size"],
      v.EventSourceMappings.map((m) => [m.EventSourceArn, m.State, m.BatchSize]))),
    h("h3", {}, "Function URL"),
    url.error ? h("p", { class: "muted" }, url.error.status === 404 ? "None" : url.error.message)
      : dl([["URL", url.value.FunctionUrl], ["Auth type", url.value.AuthType]]),
    triggers.error ? failure(triggers.error) : [
      h("h3", {}, "EventBridge rules"),
      table(["Bus", "Rule", "State", "Schedule / pattern"], (t.eventBridgeRules || []).map((r) =>
        [r.bus, r.name, r.state, r.scheduleExpression || r.eventPattern || ""])),
      h("h3", {}, "EventBridge Scheduler schedules"),
      table(["Group", "Name", "Expression", "State", "Next fire"], (t.schedules || []).map((s) =>
        [s.group, s.name, s.expression, s.state, fmtDate(s.nextFire)])),
      h("h3", {}, "SNS subscriptions"),
      table(["Topic", "Subscription"], (t.snsSubscriptions || []).map((s) => [s.topicArn, s.subscriptionArn])),
      h("h3", {}, "S3 bucket notifications"),
      table(["Bucket", "Events", "Filter"], (t.s3Notifications || []).map((n) =>
        [n.bucket, (n.events || []).join(", "), [n.prefix && `prefix ${n.prefix}`, n.suffix && `suffix ${n.suffix}`].filter(Boolean).join(", ")])),
      h("p", { class: "muted" }, "API Gateway integrations and other services' resource policies have no listing by target and are not shown."),
    ]);
  const layers = panel("Layers", table(["Layer version", "Size"],
    (c.Layers || []).map((l) => [l.Arn, `${l.CodeSize} bytes`])));

  const charts = chartsPanel(name);
  const group = logging.LogGroup || `/aws/lambda/${name}`;
  show(title, invokePanel(name, charts.refresh), charts.panel, logsPanel(group),
    h("div", { class: "grid" }, config, h("div", {}, versionsPanel, aliasesPanel, concurrency, layers)),
    triggersPanel);
}

// ---- test invoke -----------------------------------------------------------------------

export function parseReport(tail) {
  const line = (tail || "").split("\n").find((l) => l.startsWith("REPORT "));
  if (!line) return null;
  const num = (label) => {
    const m = line.match(new RegExp(label + ":\\s*([0-9.]+)"));
    return m ? Number(m[1]) : null;
  };
  return { duration: num("Duration"), billed: num("Billed Duration"), init: num("Init Duration"),
           memory: num("Memory Size"), maxMemory: num("Max Memory Used") };
}

function invokePanel(name, onInvoked) {
  const editor = h("textarea", { id: "payload", spellcheck: "false" }, '{\n  "key": "value"\n}');
  const validity = h("span", { id: "payload-valid", class: "muted" });
  const button = h("button", { type: "button", id: "invoke" }, "Invoke");
  const out = h("div", { id: "invoke-result" });
  const check = () => {
    try { JSON.parse(editor.value); validity.textContent = "Valid JSON"; validity.className = "ok"; button.disabled = false; return true; }
    catch (e) { validity.textContent = "Invalid JSON: " + e.message; validity.className = "bad"; button.disabled = true; return false; }
  };
  editor.addEventListener("input", check);
  button.addEventListener("click", async () => {
    if (!check()) return;
    button.disabled = true;
    out.replaceChildren(h("p", { class: "muted" }, "Invoking…"));
    try {
      const r = await api("POST", "invoke/" + enc(name), editor.value);
      const report = parseReport(r.logTail);
      const failed = r.functionError || r.statusCode >= 300;
      let pretty = r.payload;
      try { pretty = JSON.stringify(JSON.parse(r.payload), null, 2); } catch { /* not JSON */ }
      out.replaceChildren(
        h("p", { id: "invoke-status", class: failed ? "bad" : "ok" },
          r.functionError ? `Function error (${r.functionError})`
            : r.statusCode >= 300 ? `Refused: ${r.errorType || ""} (HTTP ${r.statusCode})`
              : `Succeeded (version ${r.executedVersion})`),
        report ? dl([["Duration", `${report.duration} ms`], ["Billed duration", `${report.billed} ms`],
          ["Init duration", report.init != null ? `${report.init} ms` : "— (warm)"],
          ["Max memory used", report.maxMemory != null ? `${report.maxMemory} MB of ${report.memory} MB` : "—"]]) : "",
        h("h3", {}, "Response"), h("pre", { id: "invoke-payload" }, pretty),
        h("h3", {}, "Log tail"), h("pre", { id: "invoke-log" }, r.logTail || "(none)"));
      onInvoked();
    } catch (error) {
      out.replaceChildren(failure(error));
    } finally {
      button.disabled = false;
    }
  });
  check();
  return panel("Test", editor, h("div", { class: "row" }, button, validity), out);
}

// ---- live logs -------------------------------------------------------------------------

// Function output reaches the log store in batches, so an event stamped a little before the
// newest one shown can still arrive: each read starts this far back and drops what it showed.
const LOG_OVERLAP_MS = 30 * 1000;
const LOG_LINES = 1000;

// Tails `group` with FilterLogEvents every 2 s: from the newest event seen (less the overlap),
// following nextToken; a read that has more pages than one poll takes resumes at its token.
function logsPanel(group) {
  const pre = h("pre", { id: "logs", "data-group": group }, "");
  const status = h("p", { class: "muted", id: "logs-status" }, "Waiting for logs…");
  const opened = Date.now() - 15 * 60 * 1000;
  const seen = new Map(); // eventId -> timestamp
  let lines = []; // {id, text}, in eventId (timestamp, then arrival) order
  let newest = opened;
  let resume = null; // the input of a read with pages left
  let busy = false;
  const add = (events) => {
    let late = false;
    for (const e of events || []) {
      if (seen.has(e.eventId)) continue;
      seen.set(e.eventId, e.timestamp);
      if (lines.length && e.eventId < lines[lines.length - 1].id) late = true;
      lines.push({ id: e.eventId, text: `${new Date(e.timestamp).toISOString()}  ${String(e.message).replace(/\n$/, "")}` });
      newest = Math.max(newest, e.timestamp);
    }
    if (late) lines.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (lines.length > LOG_LINES) lines = lines.slice(lines.length - LOG_LINES);
    // Ids older than any read can reach again are forgotten.
    for (const [id, ts] of seen) if (ts < newest - 2 * LOG_OVERLAP_MS) seen.delete(id);
  };
  const poll = async () => {
    if (busy) return;
    busy = true;
    try {
      let input = resume || { logGroupName: group, startTime: Math.max(opened, newest - LOG_OVERLAP_MS), limit: 500 };
      resume = null;
      for (let round = 0; ; round++) {
        const r = await api("POST", "logs/FilterLogEvents", input);
        add(r.events);
        if (!r.nextToken) break;
        input = { ...input, nextToken: r.nextToken };
        if (round === 4) { resume = input; break; }
      }
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
      pre.textContent = lines.map((l) => l.text).join("\n");
      if (atBottom) pre.scrollTop = pre.scrollHeight;
      status.textContent = `Live: refreshed ${new Date().toLocaleTimeString()}`
        + (lines.length ? "" : ` (no events in ${group} yet)`);
      status.className = "muted";
    } catch (error) {
      if (error.status === 401) return;
      if (error.body && error.body.code === "ResourceNotFoundException") {
        status.textContent = `Live: no log group ${group} yet (the first invocation creates it)`;
        status.className = "muted";
      } else {
        status.textContent = "Logs not available: " + error.message;
        status.className = "bad";
      }
    } finally {
      busy = false;
    }
  };
  poll();
  timers.push(setInterval(poll, 2000));
  return panel("Live logs", status, pre);
}

// ---- charts ----------------------------------------------------------------------------

const RANGES = {
  hour: { seconds: 3600, period: 60, refresh: 5000 },
  day: { seconds: 86400, period: 900, refresh: 60000 },
};

// Counts are published only when something happened (and concurrency only while something
// runs), so their missing buckets are zeros; a missing duration is no data.
const CHART_SPECS = [
  { title: "Invocations", series: [["Invocations", "Sum"]], count: true },
  { title: "Errors and throttles", series: [["Errors", "Sum"], ["Throttles", "Sum"]], count: true },
  { title: "Duration (ms)", series: [["Duration", "p50"], ["Duration", "p99"]], count: false },
  { title: "Concurrency", series: [["ConcurrentExecutions", "Maximum"]], count: true },
];
const COLORS = ["#0972d3", "#d91515", "#037f0c"];
const COUNT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7];

// The buckets of the range ending with the current one: [start, end) and every bucket's start.
export function grid(seconds, period, nowSeconds) {
  const end = nowSeconds - (nowSeconds % period) + period;
  const start = end - seconds;
  const xs = [];
  for (let t = start; t < end; t += period) xs.push(t);
  return { start, end, xs };
}

// One series on the grid, from a query's timestamps and values.
export function onGrid(xs, period, result, count) {
  const byT = new Map();
  if (result) result.timestamps.forEach((t, k) => byT.set(t - (t % period), result.values[k]));
  return xs.map((x) => (byT.has(x) ? byT.get(x) : count ? 0 : null));
}

function timeLabels(withDay) {
  return (u, splits) => splits.map((t) => {
    const d = new Date(t * 1000);
    const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return withDay && d.getHours() === 0 && d.getMinutes() === 0
      ? d.toLocaleDateString([], { month: "short", day: "numeric" }) : hm;
  });
}

function valueLabels(u, splits) {
  return splits.map((v) => (v == null ? "" : Math.abs(v) >= 1e4 ? `${(v / 1e3).toFixed(0)}k`
    : Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 1 : 0)));
}

// The y axis as wide as its widest label, so long labels neither clip nor overlap the plot.
function axisWidth(u, values) {
  const longest = Math.max(1, ...(values || []).map((v) => String(v).length));
  return 18 + 7 * longest;
}

function plotOptions(spec, width, range) {
  return {
    width, height: 180,
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    series: [{ label: "Time", value: (u, t) => (t == null ? "—" : new Date(t * 1000).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" })) },
      ...spec.series.map(([m, stat], j) => ({
      label: `${m} ${stat}`, stroke: COLORS[j], width: 1.5, spanGaps: false,
      points: { show: !spec.count, size: 5 },
    }))],
    scales: {
      x: { time: true },
      y: { range: (u, lo, hi) => [0, hi > 0 ? hi * 1.15 : 1] },
    },
    axes: [
      // Room for "HH:MM" labels with a gap, so ticks thin out instead of overlapping.
      { space: 70, values: timeLabels(range === "day"), font: "11px system-ui, sans-serif" },
      { space: 28, size: axisWidth, values: valueLabels, incrs: spec.count ? COUNT_INCRS : undefined,
        font: "11px system-ui, sans-serif" },
    ],
  };
}

// The monitoring panel: one chart per spec over the last hour (1-minute buckets) or the last
// day (15-minute buckets), refreshed on a timer and at once after a test invocation. Each
// chart's box carries what the server returned in `data-points`
// ({"<Metric> <Stat>": [[epoch seconds, value], ...]}).
function chartsPanel(name) {
  const holder = h("div", { class: "charts", id: "charts" });
  const note = h("p", { class: "muted", id: "charts-note" });
  const hour = h("button", { type: "button", class: "secondary active", id: "range-hour" }, "Last hour");
  const day = h("button", { type: "button", class: "secondary", id: "range-day" }, "Last day");
  let range = "hour";
  let built = null; // {range, xs0, items: [{spec, box, plot}]}
  let busy = false;
  let again = false;
  let timer = null;

  const build = () => {
    if (built) {
      const old = built.items.map((i) => i.plot).filter(Boolean);
      old.forEach((p) => p.destroy());
      charts = charts.filter((c) => !old.includes(c));
    }
    const items = CHART_SPECS.map((spec) => {
      const box = h("div", { class: "chart panel", "data-metric": spec.title, "data-points": "{}" }, h("h3", {}, spec.title));
      return { spec, box, plot: null };
    });
    // Every box is placed before any is measured, so the grid has its final columns.
    holder.replaceChildren(...items.map((i) => i.box));
    built = { range, items };
  };

  const load = async () => {
    // A refresh due after the page was left has nothing to draw into.
    if (!holder.isConnected) return;
    if (busy) { again = true; return; }
    busy = true;
    try {
      const { seconds, period } = RANGES[range];
      const { start, end, xs } = grid(seconds, period, Math.floor(Date.now() / 1000));
      const queries = [];
      CHART_SPECS.forEach((s, i) => s.series.forEach(([metric, stat], j) =>
        queries.push({ id: `q${i}_${j}`, metric, stat, fn: name, period })));
      let results = new Map();
      try {
        results = await metricData(queries, start, end);
        note.textContent = "";
      } catch (error) {
        if (error.status === 401) return;
        note.textContent = "Metrics not available: " + error.message;
      }
      if (!holder.isConnected) return;
      if (!built || built.range !== range) build();
      for (const [i, item] of built.items.entries()) {
        const points = {};
        const ys = item.spec.series.map(([m, stat], j) => {
          const r = results.get(`q${i}_${j}`);
          points[`${m} ${stat}`] = r ? r.timestamps.map((t, k) => [t, r.values[k]]) : [];
          return onGrid(xs, period, r, item.spec.count);
        });
        item.box.dataset.points = JSON.stringify(points);
        item.box.dataset.range = range;
        if (item.plot) {
          item.plot.setData([xs, ...ys]);
        } else {
          const width = Math.max(240, item.box.clientWidth - 34);
          item.plot = new uPlot(plotOptions(item.spec, width, range), [xs, ...ys], item.box);
          charts.push(item.plot);
        }
      }
      holder.dataset.loaded = String(Date.now());
    } finally {
      busy = false;
      if (again) { again = false; load(); }
    }
  };

  // Charts follow their boxes' width (the grid's columns change with the window).
  if (typeof ResizeObserver !== "undefined") {
    const observer = new ResizeObserver(() => {
      if (!built) return;
      for (const item of built.items) {
        const width = Math.max(240, item.box.clientWidth - 34);
        if (item.plot && Math.abs(item.plot.width - width) > 2) item.plot.setSize({ width, height: 180 });
      }
    });
    observer.observe(holder);
    observers.push(observer);
  }

  const select = (which) => {
    range = which;
    hour.classList.toggle("active", which === "hour");
    day.classList.toggle("active", which === "day");
    if (timer) clearInterval(timer);
    timer = setInterval(load, RANGES[which].refresh);
    timers.push(timer);
    load();
  };
  hour.addEventListener("click", () => select("hour"));
  day.addEventListener("click", () => select("day"));
  setTimeout(() => select("hour"), 0);
  // After a test invocation its datapoints are in the store within about a second.
  const refresh = () => { load(); setTimeout(load, 1500); };
  return { panel: panel("Monitoring", h("div", { class: "row tabs" }, hour, day), note, holder), refresh };
}

// ---- other services --------------------------------------------------------------------

async function listPage(title, path, key, headers, row) {
  show(h("h1", {}, title), h("p", { class: "muted" }, "Loading…"));
  try {
    const data = await api("GET", path);
    show(h("h1", {}, title), h("div", { class: "panel" }, table(headers, (data[key] || []).map(row))));
  } catch (error) {
    show(h("h1", {}, title), failure(error));
  }
}

async function costPage() {
  show(h("h1", {}, "Cost"), h("p", { class: "muted" }, "Loading…"));
  try {
    const data = await api("GET", "cost");
    if (!data.available) {
      show(h("h1", {}, "Cost"), panel("This month", h("p", { class: "muted", id: "cost" }, "Not available: " + (data.reason || ""))));
      return;
    }
    const money = (v) => `${Number(v || 0).toFixed(6)} ${data.currency || ""}`;
    const rows = (data.functions || []).map((f) => [f.function, f.architecture, f.requests,
      Number(f.gb_seconds || 0).toFixed(3), money(f.cost_before_free_tier)]);
    const totals = data.totals || {};
    const free = data.free_tier || {};
    show(h("h1", {}, "Cost"), panel(`Month ${data.month || ""}`,
      dl([["Requests", totals.requests], ["GB-seconds", Number(totals.gb_seconds || 0).toFixed(3)],
        ["Before free tier", money(data.cost_before_free_tier)], ["Free tier savings", money(free.savings)],
        ["Estimated cost", h("span", { id: "cost" }, money(data.cost))]]),
      table(["Function", "Architecture", "Requests", "GB-seconds", "Cost before free tier"], rows, "No usage this month.")));
  } catch (error) {
    show(h("h1", {}, "Cost"), failure(error));
  }
}

// ---- routing ---------------------------------------------------------------------------

function route() {
  clearPage();
  const hash = location.hash.replace(/^#\/?/, "");
  const [section, ...rest] = hash.split("/");
  switch (section) {
    case "functions":
      if (rest.length) return functionPage(decodeURIComponent(rest.join("/")));
      return functionsPage();
    case "queues":
      return listPage("Queues", "queues", "queues", ["Name", "Messages available", "In flight", "Delayed"],
        (q) => [q.name, q.visible, q.inFlight, q.delayed]);
    case "topics":
      return listPage("Topics", "topics", "topics", ["Name", "Subscriptions", "Pending"],
        (t) => [t.name, t.confirmed, t.pending]);
    case "schedules":
      return listPage("Schedules", "schedules", "schedules", ["Group", "Name", "Expression", "State", "Next fire"],
        (s) => [s.group, s.name, s.expression + (s.timezone ? ` (${s.timezone})` : ""), s.state, fmtDate(s.nextFire)]);
    case "cost":
      return costPage();
    default:
      location.hash = "#/functions";
      return undefined;
  }
}

async function start() {
  if (location.pathname === "/console/login") {
    loginPage();
    return;
  }
  let session;
  try {
    session = await api("GET", "session");
  } catch {
    return; // redirected to sign-in
  }
  csrf = session.csrfToken;
  document.getElementById("nav").hidden = false;
  document.getElementById("who").textContent = `Account ${session.account}` + (session.authDisabled ? " (no auth)" : "");
  const out = document.getElementById("signout");
  out.hidden = session.authDisabled;
  out.addEventListener("click", async () => {
    try { await api("POST", "logout"); } finally { location.assign("/console/login"); }
  });
  window.addEventListener("hashchange", route);
  route();
}

start();
