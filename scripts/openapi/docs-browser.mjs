// make docs-test: the API reference at /docs renders in headless Chromium
// (Debian's chromium, driven by playwright-core) from what customerd serves
// alone, and shows the three customer operations.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

import { startCustomerd, stopAll } from "./service.mjs";

const operations = [
  { id: "getCustomer", summary: "Get authenticated customer profile" },
  { id: "upsertCustomer", summary: "Create or update a customer account" },
  { id: "authenticateCustomer", summary: "Authenticate customer and generate JWT token" },
];

const profile = mkdtempSync(join(tmpdir(), "customerd-chromium-"));
let context;
const failures = [];
try {
  const service = await startCustomerd();
  const origin = new URL(service.url).origin;
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const elsewhere = [];
  const offsite = (req) => {
    const url = new URL(req.url());
    return url.protocol.startsWith("http") && url.origin !== origin;
  };
  // A request that got an answer, or failed for any reason but the page's
  // policy, went to the network.
  page.on("requestfinished", (req) => offsite(req) && elsewhere.push(req.url()));
  page.on("requestfailed", (req) => {
    if (offsite(req) && !/BLOCKED_BY_CSP|^csp$/i.test(req.failure()?.errorText ?? "")) {
      elsewhere.push(`${req.url()} (${req.failure()?.errorText})`);
    }
  });
  const errors = [];
  const refused = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    // make docs-bundle inlines Redoc's CDN logo: the page's policy refuses nothing.
    if (msg.text().includes("Content Security Policy")) refused.push(msg.text());
    else errors.push(msg.text());
  });

  // /docs/ (as people type it) leads to the page too.
  const res = await page.goto(`${service.url}/docs/`, { waitUntil: "load", timeout: 30_000 });
  if (res?.status() !== 200 || new URL(page.url()).pathname !== "/docs") {
    failures.push(`GET /docs/ ended at ${page.url()} with ${res?.status()}`);
  }
  for (const op of operations) {
    // Redoc gives each operation a section whose id ends with operation/{operationId}.
    const section = page.locator(`[data-section-id$="operation/${op.id}"]`).first();
    try {
      await section.waitFor({ state: "attached", timeout: 30_000 });
      const text = await section.innerText();
      if (!text.includes(op.summary)) failures.push(`${op.id}: the section does not show "${op.summary}"`);
      else console.log(`ok   ${op.id}: "${op.summary}"`);
    } catch (err) {
      failures.push(`${op.id}: not on the page (${err.message.split("\n")[0]})`);
    }
  }
  const title = await page.title();
  if (!title.includes("customerd")) failures.push(`page title: ${title}`);
  if (elsewhere.length) failures.push(`the page loads from elsewhere: ${elsewhere.join(", ")}`);
  if (errors.length) failures.push(`errors in the page: ${errors.join(" | ")}`);
  if (refused.length) failures.push(`refused by the page's policy: ${refused.join(" | ").slice(0, 300)}`);
} catch (err) {
  failures.push(String(err?.stack ?? err));
} finally {
  await context?.close();
  await stopAll();
  rmSync(profile, { recursive: true, force: true });
}
if (failures.length) {
  console.error(`docs-test: FAIL\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
console.log("docs-test: /docs renders the three customer operations in headless Chromium");
