// Drives Debian's chromium with playwright-core for tests/e2e/test_console.py, launched
// exactly as cors.js launches it. Reads a job from stdin: {"executablePath", "base",
// "accessKeyId", "secretAccessKey", "function", "artifacts"} and walks the console: the
// unauthenticated page redirects to sign-in, signing in, finding and opening the function,
// a test invocation, the log tail, the charts. Prints what it saw as JSON on stdout and
// saves screenshots under `artifacts`.
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

    // The charts draw on canvases; the live log panel reports either lines or why not.
    await page.waitForSelector("#charts canvas", { timeout: 20000 });
    out.canvases = await page.$$eval("#charts canvas", (c) => c.length);
    await page.waitForFunction(() => {
      const s = document.querySelector("#logs-status");
      return s && !s.textContent.startsWith("Waiting");
    }, null, { timeout: 20000 });
    await new Promise((r) => setTimeout(r, 2500));
    out.logsStatus = await page.textContent("#logs-status");
    out.logs = await page.textContent("#logs");
    out.chartsNote = await page.textContent("#charts-note");
    await shot(page, "03-function");

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
