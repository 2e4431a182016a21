// Drives Debian's chromium with playwright-core for tests/e2e/test_browser.py.
// Reads a job from stdin: {"cookies": [...], "steps": [{"name", "url", "selector"}]}; for
// each step opens a fresh page at `url`, waits for `selector` (a node the page fills in) and
// reads its text, recording every request the browser sent on the way, CORS preflights
// included (the DevTools protocol reports those, with initiator "preflight";
// page.on("request") does not). Prints {"steps": [{"name", "status", "text", "requests":
// [{method, url, type, initiator, wire, status, requestHeaders, responseHeaders, failed,
// corsError}], "console": [...]}]} as JSON on stdout. `wire` is set for requests whose
// headers went on the wire; a fetch the browser refused after its preflight is reported
// without it, with `corsError`.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");

const PLAYWRIGHT = process.env.PLAYWRIGHT_CORE || "playwright-core";
const { chromium } = require(PLAYWRIGHT);

const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

function lower(headers) {
  const out = {};
  for (const [name, value] of Object.entries(headers || {})) out[name.toLowerCase()] = value;
  return out;
}

async function runStep(context, step) {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  const byId = new Map();
  const entry = (id) => {
    if (!byId.has(id)) byId.set(id, {});
    return byId.get(id);
  };
  cdp.on("Network.requestWillBeSent", (e) => {
    Object.assign(entry(e.requestId), {
      method: e.request.method, url: e.request.url, type: e.type,
      initiator: e.initiator && e.initiator.type,
      requestHeaders: Object.assign(lower(e.request.headers), entry(e.requestId).requestHeaders),
    });
  });
  // The headers as they went on the wire (the preflight's Origin and Access-Control-Request-*).
  cdp.on("Network.requestWillBeSentExtraInfo", (e) => {
    const r = entry(e.requestId);
    r.wire = true;
    r.requestHeaders = Object.assign(r.requestHeaders || {}, lower(e.headers));
  });
  cdp.on("Network.responseReceived", (e) => {
    const r = entry(e.requestId);
    r.status = e.response.status;
    r.responseHeaders = Object.assign(lower(e.response.headers), r.responseHeaders);
  });
  cdp.on("Network.responseReceivedExtraInfo", (e) => {
    const r = entry(e.requestId);
    r.status = r.status || e.statusCode;
    r.responseHeaders = Object.assign(r.responseHeaders || {}, lower(e.headers));
  });
  cdp.on("Network.loadingFailed", (e) => {
    const r = entry(e.requestId);
    r.failed = e.errorText;
    if (e.corsErrorStatus) r.corsError = e.corsErrorStatus.corsError;
  });
  await cdp.send("Network.enable");
  const consoleLines = [];
  page.on("console", (m) => consoleLines.push(m.text()));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));

  const response = await page.goto(step.url, { timeout: 20000 });
  await page.waitForSelector(step.selector, { state: "attached", timeout: 20000 });
  const text = await page.textContent(step.selector);
  // Let the last network events arrive.
  await new Promise((resolve) => setTimeout(resolve, 100));
  await page.close();
  return {
    name: step.name,
    status: response ? response.status() : null,
    text,
    requests: [...byId.values()].filter((r) => r.url),
    console: consoleLines,
  };
}

async function main() {
  const job = JSON.parse(fs.readFileSync(0, "utf8"));
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "gust-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: job.executablePath || "/usr/bin/chromium",
      headless: true,
      args: ARGS,
      timeout: 30000,
    });
    if (job.cookies && job.cookies.length) await context.addCookies(job.cookies);
    const steps = [];
    for (const step of job.steps) steps.push(await runStep(context, step));
    process.stdout.write(JSON.stringify({ steps }) + "\n");
  } finally {
    if (context) await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
