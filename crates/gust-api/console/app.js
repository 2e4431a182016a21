// Gust's web console: a single-page app over /console/api (see crates/gust-api/src/console).
// Every value from the server is put into the page as text (never as HTML).
import uPlot from "./vendor/uPlot.esm.js";

const API = "/console/api/";
let csrf = "";
let timers = [];
let charts = [];

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

async function metricData(queries, seconds, period) {
  const end = Math.floor(Date.now() / 1000);
  return api("POST", "metrics/GetMetricData", {
    StartTime: end - seconds, EndTime: end, ScanBy: "TimestampAscending",
    MetricDataQueries: queries.map((q) => ({
      Id: q.id, ReturnData: true,
      MetricStat: {
        Metric: { Namespace: "AWS/Lambda", MetricName: q.metric,
                  Dimensions: q.fn ? [{ Name: "FunctionName", Value: q.fn }] : [] },
        Period: period, Stat: q.stat,
      },
    })),
  });
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
  const stats = {};
  let metricsNote = null;
  try {
    const slice = functions.slice(0, 200);
    const queries = slice.flatMap((f, i) => [
      { id: `i${i}`, metric: "Invocations", stat: "Sum", fn: f.FunctionName },
      { id: `e${i}`, metric: "Errors", stat: "Sum", fn: f.FunctionName },
    ]);
    if (queries.length) {
      const data = await metricData(queries, 86400, 300);
      for (const r of data.MetricDataResults || []) {
        const i = Number(r.Id.slice(1));
        const s = (stats[i] ||= { inv: 0, err: 0, last: null });
        const total = (r.Values || []).reduce((a, b) => a + b, 0);
        if (r.Id[0] === "i") {
          s.inv = total;
          (r.Timestamps || []).forEach((t, k) => { if (r.Values[k] > 0) s.last = Math.max(s.last || 0, Number(t)); });
        } else s.err = total;
      }
    }
  } catch (error) {
    metricsNote = h("p", { class: "muted" }, "Metrics not available: " + error.message);
  }
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const rows = functions.map((f, i) => [f, stats[i]])
      .filter(([f]) => f.FunctionName.toLowerCase().includes(q))
      .map(([f, s]) => [
        h("a", { href: "#/functions/" + enc(f.FunctionName), class: "fn-link" }, f.FunctionName),
        h("span", { class: "badge " + (f.State || "") }, f.State || "—"),
        f.Runtime || f.PackageType || "—", `${f.MemorySize} MB`, fmtDate(f.LastModified),
        s && s.last ? fmtDate(s.last * 1000) : "—",
        s && s.inv ? `${((100 * s.err) / s.inv).toFixed(1)}% of ${s.inv}` : "—",
      ]);
    body.replaceChildren(metricsNote || "", table(
      ["Name", "State", "Runtime", "Memory", "Last modified", "Last invocation (24 h)", "Error rate (24 h)"],
      rows, "No functions."));
  };
  search.addEventListener("input", render);
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

  show(title, invokePanel(name), chartsPanel(name), logsPanel(name),
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

function invokePanel(name) {
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

function logsPanel(name) {
  const pre = h("pre", { id: "logs" }, "");
  const status = h("p", { class: "muted", id: "logs-status" }, "Waiting for logs…");
  const seen = new Set();
  let since = Date.now() - 15 * 60 * 1000;
  const lines = [];
  const poll = async () => {
    try {
      let token;
      let rounds = 0;
      do {
        const input = { logGroupName: `/aws/lambda/${name}`, startTime: since, limit: 500 };
        if (token) input.nextToken = token;
        const r = await api("POST", "logs/FilterLogEvents", input);
        for (const e of r.events || []) {
          if (seen.has(e.eventId)) continue;
          seen.add(e.eventId);
          lines.push(`${new Date(e.timestamp).toISOString()}  ${e.message.replace(/\n$/, "")}`);
          since = Math.max(since, e.timestamp);
        }
        token = r.nextToken;
      } while (token && ++rounds < 5);
      while (lines.length > 1000) lines.shift();
      pre.textContent = lines.join("\n");
      pre.scrollTop = pre.scrollHeight;
      status.textContent = `Live: refreshed ${new Date().toLocaleTimeString()}`;
      status.className = "muted";
    } catch (error) {
      if (error.status === 401) return;
      status.textContent = "Logs not available: " + error.message;
      status.className = "bad";
    }
  };
  poll();
  timers.push(setInterval(poll, 2000));
  return panel("Live logs", status, pre);
}

// ---- charts ----------------------------------------------------------------------------

function chartsPanel(name) {
  const holder = h("div", { class: "charts", id: "charts" });
  const note = h("p", { class: "muted", id: "charts-note" });
  const hour = h("button", { type: "button", class: "secondary active" }, "Last hour");
  const day = h("button", { type: "button", class: "secondary" }, "Last day");
  const load = async (seconds, period) => {
    charts.forEach((c) => c.destroy());
    charts = [];
    holder.replaceChildren();
    const specs = [
      { title: "Invocations", series: [["Invocations", "Sum"]] },
      { title: "Errors and throttles", series: [["Errors", "Sum"], ["Throttles", "Sum"]] },
      { title: "Duration (ms)", series: [["Duration", "p50"], ["Duration", "p99"]] },
      { title: "Concurrency", series: [["ConcurrentExecutions", "Maximum"]] },
    ];
    const queries = [];
    specs.forEach((s, i) => s.series.forEach(([metric, stat], j) =>
      queries.push({ id: `q${i}_${j}`, metric, stat, fn: name })));
    let results = {};
    try {
      const data = await metricData(queries, seconds, period);
      for (const r of data.MetricDataResults || []) results[r.Id] = r;
      note.textContent = "";
    } catch (error) {
      note.textContent = "Metrics not available: " + error.message;
    }
    const end = Math.floor(Date.now() / 1000);
    const start = end - seconds;
    const xs = [];
    for (let t = start - (start % period); t <= end; t += period) xs.push(t);
    specs.forEach((s, i) => {
      const ys = s.series.map((_, j) => {
        const r = results[`q${i}_${j}`];
        const byT = new Map();
        if (r) (r.Timestamps || []).forEach((t, k) => byT.set(Number(t) - (Number(t) % period), r.Values[k]));
        return xs.map((x) => (byT.has(x) ? byT.get(x) : null));
      });
      const box = h("div", { class: "chart panel", "data-metric": s.title });
      holder.append(box);
      box.append(h("h3", {}, s.title));
      const colors = ["#0972d3", "#d91515", "#037f0c"];
      // The box's own width (the grid sizes it), less its padding.
      const width = Math.max(280, (box.clientWidth || 400) - 34);
      charts.push(new uPlot({
        width, height: 180,
        series: [{}, ...s.series.map(([m, stat], j) => ({ label: `${m} ${stat}`, stroke: colors[j], spanGaps: false, points: { show: true, size: 4 } }))],
        axes: [{}, { size: 50 }],
        scales: { x: { time: true } },
      }, [xs, ...ys], box));
    });
  };
  hour.addEventListener("click", () => { hour.classList.add("active"); day.classList.remove("active"); load(3600, 60); });
  day.addEventListener("click", () => { day.classList.add("active"); hour.classList.remove("active"); load(86400, 900); });
  setTimeout(() => load(3600, 60), 0);
  return panel("Monitoring", h("div", { class: "row tabs" }, hour, day), note, holder);
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
