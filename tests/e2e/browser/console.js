// Drives Debian's chromium with playwright-core for tests/e2e/test_console.py, launched
// exactly as cors.js launches it. Reads a job from stdin: {"executablePath", "base",
// "accessKeyId", "secretAccessKey", "function", "artifacts"} and walks the console: the
// unauthenticated page redirects to sign-in, signing in, finding and opening the function,
// a test invocation, the log tail, its line in the live logs panel, the invocations chart
// counting it (its box's `data-points`), the last-day charts, and the functions list's
// last invocation and error rate. Every wait polls the page with a timeout. Prints what
// it saw as JSON on stdout and saves screenshots under `artifacts`.
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

async function main() {
  const job = JSON.parse(fs.readFileSync(0, "utf8"));
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "gust-chromium-"));
  fs.mkdirSync(job.artifacts, { recursive: true });
  const shot = (page, name) => page.screenshot({ path: path.join(job.artifacts, `${name}.png`), fullPage: true });
  const out = { console: [] };
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: job.executablePath || "/usr/bin/chromium",
      headless: true,
      args: ARGS,
      timeout: 30000,
      viewport: { width: 1280, height: 900 },
    });
    const page = await context.newPage();
    page.on("console", (m) => out.console.push(m.text()));
    page.on("pageerror", (e) => out.console.push(`pageerror: ${e.message}`));

    // Not signed in: the app's page sends the browser to sign-in.
    const first = await page.goto(`${job.base}/console/`, { timeout: 20000 });
    out.firstUrl = page.url();
    out.firstStatus = first ? first.status() : null;
    out.csp = first ? first.headers()["content-security-policy"] : null;
    await page.waitForSelector("#login", { timeout: 20000 });
    await shot(page, "01-sign-in");

    // A wrong secret is refused.
    await page.fill("#akid", job.accessKeyId);
    await page.fill("#secret", "not-the-secret");
    await page.click("#signin");
    await page.waitForFunction(() => document.querySelector("#login-error").textContent.length > 0);
    out.badLogin = await page.textContent("#login-error");

    await page.fill("#secret", job.secretAccessKey);
    await page.click("#signin");
    await page.waitForSelector("a.fn-link", { timeout: 20000 });
    const cookies = await context.cookies();
    out.cookie = cookies.find((c) => c.name === "gust_console") || null;
    await page.fill("#search", job.function);
    out.listed = await page.$$eval("a.fn-link", (links) => links.map((a) => a.textContent));
    await shot(page, "02-functions");

    await page.click(`a.fn-link >> text=${job.function}`);
    await page.waitForSelector("#invoke", { timeout: 20000 });
    await page.fill("#payload", "{not json");
    out.invalidJson = await page.textContent("#payload-valid");
    out.invokeDisabled = await page.isDisabled("#invoke");
    await page.fill("#payload", JSON.stringify({ hello: "console" }));
    await page.click("#invoke");
    await page.waitForSelector("#invoke-payload", { timeout: 60000 });
    out.invokeStatus = await page.textContent("#invoke-status");
    out.invokePayload = await page.textContent("#invoke-payload");
    out.invokeLog = await page.textContent("#invoke-log");
    out.invokeResult = await page.textContent("#invoke-result");

    // The charts draw on canvases.
    await page.waitForSelector("#charts canvas", { timeout: 20000 });
    out.canvases = await page.$$eval("#charts canvas", (c) => c.length);

    // The invocation's line reaches the live logs panel (polled every 2 s).
    await page.waitForFunction(
      () => (document.querySelector("#logs") || {}).textContent.includes("CONSOLE-LOG-LINE console"),
      null, { timeout: 30000, polling: 250 });
    out.logsStatus = await page.textContent("#logs-status");
    out.logs = await page.textContent("#logs");
    out.logGroup = await page.getAttribute("#logs", "data-group");

    // The invocations chart counts it: the datapoints the server returned are on its box.
    const invocations = () => {
      const box = document.querySelector('#charts [data-metric="Invocations"]');
      if (!box) return 0;
      const points = JSON.parse(box.dataset.points || "{}")["Invocations Sum"] || [];
      return points.reduce((sum, [, v]) => sum + v, 0);
    };
    await page.waitForFunction(invocations, null, { timeout: 30000, polling: 250 });
    out.invocationsCharted = await page.evaluate(invocations);
    out.chartPoints = await page.$$eval("#charts .chart", (boxes) =>
      Object.fromEntries(boxes.map((b) => [b.dataset.metric, JSON.parse(b.dataset.points)])));
    out.chartsNote = await page.textContent("#charts-note");
    // No chart is wider than its box (the axes' labels fit).
    out.chartOverflow = await page.$$eval("#charts .chart", (boxes) =>
      boxes.filter((b) => b.scrollWidth > b.clientWidth + 1).map((b) => b.dataset.metric));
    await shot(page, "03-function");

    // The last day, in 15-minute buckets, counts it too.
    await page.click("#range-day");
    await page.waitForFunction(() => {
      const box = document.querySelector('#charts [data-metric="Invocations"]');
      if (!box || box.dataset.range !== "day") return false;
      const points = JSON.parse(box.dataset.points || "{}")["Invocations Sum"] || [];
      return points.reduce((sum, [, v]) => sum + v, 0) >= 1;
    }, null, { timeout: 30000, polling: 250 });
    out.dayPoints = await page.$eval('#charts [data-metric="Invocations"]', (b) => JSON.parse(b.dataset.points));
    await shot(page, "03-function-day");

    // The functions list shows the invocation and its error rate.
    await page.goto(`${job.base}/console/#/functions`);
    await page.waitForSelector("[data-stats]", { timeout: 30000 });
    await page.fill("#search", job.function);
    out.listLast = await page.textContent(".last-invocation");
    out.listErrorRate = await page.textContent(".error-rate");
    await shot(page, "02-functions-after");

    for (const section of ["queues", "topics", "schedules", "cost"]) {
      await page.goto(`${job.base}/console/#/${section}`);
      await page.waitForSelector("main .panel, main p.bad", { timeout: 20000 });
      out[section] = await page.textContent("main");
      await shot(page, `04-${section}`);
    }
    process.stdout.write(JSON.stringify(out) + "\n");
  } finally {
    if (context) await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
