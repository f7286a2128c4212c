// Starts the processes the contract checks run against: a built customerd on
// a free port with a temporary SQLite database, and Stoplight Prism proxies in
// front of it. Every process is stopped by stopAll().
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, "../..");

const children = [];
const dirs = [];

function waitFor(child, stream, name, match, timeoutMs, onLine = () => {}) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${name} did not start in ${timeoutMs / 1000} s`)), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`${name} exited with ${code} before it was ready`));
    });
    createInterface({ input: stream }).on("line", (line) => {
      onLine(line);
      const m = match(line);
      if (m) {
        clearTimeout(timer);
        ok(m);
      }
    });
  });
}

/**
 * A built customerd (CUSTOMERD_BIN, default bin/customerd) with the demo
 * tenant, or with the tenants of config (the text of a configuration file).
 */
export async function startCustomerd({ config } = {}) {
  const bin = resolve(repo, process.env.CUSTOMERD_BIN ?? "bin/customerd");
  const dir = mkdtempSync(join(tmpdir(), "customerd-check-"));
  dirs.push(dir);
  const args = [];
  if (config !== undefined) {
    writeFileSync(join(dir, "customerd.yaml"), config);
    args.push("--config", join(dir, "customerd.yaml"));
  }
  const child = spawn(bin, args, {
    cwd: dir,
    stdio: ["ignore", "ignore", "pipe"],
    env: {
      PATH: process.env.PATH ?? "",
      CUSTOMERD_ADDR: "127.0.0.1:0",
      CUSTOMERD_METRICS_ADDR: "127.0.0.1:0",
      CUSTOMERD_DATABASE_URL: `sqlite://${join(dir, "customerd.db")}`,
      CUSTOMERD_SECRET: randomBytes(32).toString("hex"),
    },
  });
  children.push(child);
  const lines = [];
  const waiters = [];
  const addr = await waitFor(child, child.stderr, "customerd", (line) => {
    try {
      const entry = JSON.parse(line);
      lines.push(entry);
      if (entry.msg === "otp sent") {
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (waiters[i].to === entry.to) waiters.splice(i, 1)[0].ok(String(entry.code));
        }
      }
      return entry.msg === "customerd listening" ? String(entry.api) : null;
    } catch {
      process.stderr.write(`customerd: ${line}\n`);
      return null;
    }
  }, 30_000);
  return {
    url: addr,
    lines,
    /**
     * The next one-time code the log sender writes for `to`: call it before
     * the request that sends the code, the log line may come after the answer.
     */
    nextCode(to) {
      return new Promise((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`no code for ${to} in the log within 10 s`)), 10_000);
        waiters.push({ to, ok: (code) => (clearTimeout(timer), ok(code)) });
      });
    },
  };
}

/** Writes text to a new file in a directory that stopAll() removes. */
function tempFile(name, text) {
  const dir = mkdtempSync(join(tmpdir(), "customerd-check-"));
  dirs.push(dir);
  writeFileSync(join(dir, name), text);
  return join(dir, name);
}

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/**
 * `prism proxy SPEC TARGET [--errors]` on a free port. SPEC is openapi.yaml
 * unless spec names another file (from the repository root) or is a document.
 */
export async function startPrism(target, { errors, spec = "openapi.yaml" }) {
  const port = await freePort();
  const file = typeof spec === "string" ? resolve(repo, spec) : tempFile("openapi.json", JSON.stringify(spec));
  const args = ["proxy", file, target, "--host", "127.0.0.1", "--port", String(port)];
  if (errors) args.push("--errors");
  const child = spawn(join(here, "node_modules/.bin/prism"), args, { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const log = [];
  child.stderr.on("data", (b) => log.push(String(b)));
  await waitFor(child, child.stdout, `prism${errors ? " --errors" : ""}`,
    (line) => line.includes("Prism is listening"), 60_000, (line) => log.push(line));
  return { url: `http://127.0.0.1:${port}`, log };
}

export async function stopAll() {
  await Promise.all(children.map((child) => {
    if (child.exitCode !== null || child.signalCode !== null) return undefined;
    const exited = new Promise((ok) => child.once("exit", ok));
    child.kill("SIGTERM");
    return exited;
  }));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
