/**
 * Starts a freshly built customerd for the tests: on a free port, on a
 * temporary SQLite database, with the demo tenant whose one-time codes the
 * `log` sender writes on stderr.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

/** The repository root, from dist/test/. */
const repo = resolve(import.meta.dirname, "../../../..");

export interface Service {
  baseUrl: string;
  /**
   * The next one-time code the log sender writes for `to`: call it before the
   * request that sends the code, the log line may come after the answer.
   */
  nextCode(to: string): Promise<string>;
  /** Every JSON line the service logged. */
  lines: Record<string, unknown>[];
  stop(): Promise<void>;
}

/** Builds customerd unless CUSTOMERD_BIN names a binary already built. */
function binary(dir: string): string {
  const given = process.env.CUSTOMERD_BIN;
  if (given) return resolve(given);
  const out = join(dir, "customerd");
  execFileSync("go", ["build", "-o", out, "./cmd/customerd"], { cwd: repo, stdio: "inherit" });
  return out;
}

export async function start(): Promise<Service> {
  const dir = mkdtempSync(join(tmpdir(), "customerd-sdk-"));
  const bin = binary(dir);
  const child: ChildProcess = spawn(bin, [], {
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
  const lines: Record<string, unknown>[] = [];
  const waiters: { to: string; ok: (code: string) => void }[] = [];
  const listening = new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("customerd did not start in 30 s")), 30_000);
    child.once("exit", (code) => fail(new Error(`customerd exited with ${code} before listening`)));
    createInterface({ input: child.stderr! }).on("line", (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line);
      } catch {
        process.stderr.write(`customerd: ${line}\n`);
        return;
      }
      lines.push(entry);
      if (entry.msg === "otp sent") {
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (waiters[i]!.to === entry.to) waiters.splice(i, 1)[0]!.ok(String(entry.code));
        }
      }
      if (entry.msg === "customerd listening") {
        clearTimeout(timer);
        ok(String(entry.api));
      }
    });
  });
  const addr = await listening;
  return {
    baseUrl: addr,
    lines,
    nextCode(to) {
      return new Promise((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`no code for ${to} in the log within 10 s`)), 10_000);
        waiters.push({ to, ok: (code) => (clearTimeout(timer), ok(code)) });
      });
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((ok) => child.once("exit", ok));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
