/**
 * customerd's API never redirects. What answers a redirect in its place (a
 * proxy, a load balancer, a captive portal, a hijacked route) must not get
 * what the SDK sends: a 307 or 308 makes fetch send the same body again to
 * wherever Location points, the one-time code and its challenge included.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";

import { Customerd } from "../src/index.js";

interface Hit {
  url: string;
  authorization?: string;
  body: string;
}

function listen(handler: Parameters<typeof createServer>[1]): Promise<Server> {
  return new Promise((ok) => {
    const s = createServer(handler);
    s.listen(0, "127.0.0.1", () => ok(s));
  });
}

const port = (s: Server) => (s.address() as AddressInfo).port;

let elsewhere: Server;
let redirecting: Server;
const hits: Hit[] = [];

before(async () => {
  elsewhere = await listen((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      hits.push({ url: req.url ?? "", authorization: req.headers.authorization, body });
      res.setHeader("Content-Type", "application/json");
      res.end('"eyJhbGciOiJFUzI1NiJ9.e30.forged"');
    });
  });
  redirecting = await listen((req, res) => {
    res.statusCode = req.url?.includes("authenticate") ? 307 : 308;
    res.setHeader("Location", `http://localhost:${port(elsewhere)}${req.url}`);
    res.end();
  });
});
after(() => {
  elsewhere?.close();
  redirecting?.close();
});

describe("a redirect from the configured baseUrl", () => {
  it("does not carry the one-time code (or any body) to another origin", async () => {
    hits.length = 0;
    const sdk = new Customerd({ baseUrl: `http://127.0.0.1:${port(redirecting)}`, tenant: "demo" });
    const answer = await sdk.exchangeCode("3c1f0000-0000-4000-8000-000000000000", "719950").catch((e: unknown) => e);
    assert.deepEqual(hits, [], "another origin received the SDK's request");
    assert.ok(answer instanceof Error, "a redirect is refused, not followed");
  });

  it("does not carry a profile update to another origin", async () => {
    hits.length = 0;
    const sdk = new Customerd({ baseUrl: `http://127.0.0.1:${port(redirecting)}`, tenant: "demo" });
    await sdk.upsertCustomer({ email: "jane.doe@example.com", lastName: "Doe" }, { token: "SECRET.TOKEN.VALUE" }).catch(() => undefined);
    assert.deepEqual(hits, [], "another origin received the SDK's request");
  });
});
