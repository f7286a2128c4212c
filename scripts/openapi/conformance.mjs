// make conformance: a third-party check that the live service honours its
// contract, and that clients generated from the upstream contract keep working.
//
// customerd runs behind two Stoplight Prism proxies of openapi.yaml:
//   - `prism proxy --errors` carries the journey and every bad input that the
//     contract allows (an unknown provider, a wrong code, a bad token...):
//     any violation Prism finds, in the request or the answer, fails the check;
//   - `prism proxy` without --errors carries the bad inputs that the contract
//     itself refuses (a malformed email, a wrong type, a wrong media type),
//     which `--errors` would answer itself instead of forwarding: Prism must
//     report the request violation, and any violation in the answer fails.
// Every answer whose status the upstream document declares is also validated
// against api/upstream/customer-api.openapi.json, its oneOf read as anyOf.
import { createServer } from "node:http";

import { startCustomerd, startPrism, stopAll } from "./service.mjs";
import { checkUpstream } from "./upstream.mjs";

const failures = [];
let strict, lenient, service;

async function call(name, { via = "strict", method = "GET", path, headers = {}, body, json, expect, type }) {
  const base = via === "strict" ? strict.url : lenient.url;
  const init = { method, headers: { ...headers } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] ??= "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  const problems = [];
  if (res.status !== expect) problems.push(`status ${res.status}, want ${expect}`);
  const got = (res.headers.get("content-type") ?? "").split(";")[0];
  if (type && got !== type) problems.push(`Content-Type ${got}, want ${type}`);

  let violations = [];
  const header = res.headers.get("sl-violations");
  if (header) {
    try {
      violations = JSON.parse(header);
    } catch {
      problems.push(`unreadable sl-violations: ${header}`);
    }
  }
  const where = (v) => (Array.isArray(v.location) ? v.location[0] : "");
  const describe = (v) => `${(v.location ?? []).join(".")}: ${v.message}`;
  if (text.includes("stoplight.io/prism/errors#")) problems.push(`prism answered itself: ${text.slice(0, 600)}`);
  if (via === "strict") {
    for (const v of violations) problems.push(`prism: ${describe(v)}`);
  } else {
    for (const v of violations.filter((v) => where(v) === "response")) problems.push(`prism: ${describe(v)}`);
    if (!violations.some((v) => where(v) === "request")) {
      problems.push("prism found nothing wrong with this request: replay it through --errors");
    }
  }
  const up = checkUpstream(method, path.split("?")[0], res.status, res.headers.get("content-type") ?? "", text);
  if (up && !up.ok) problems.push(up.note);

  const tag = `${method} ${path.split("?")[0]} → ${res.status} [prism${via === "strict" ? " --errors" : ""}${up ? `, ${up.note}` : ""}]`;
  if (problems.length) {
    failures.push(`${name}: ${tag}\n    ${problems.join("\n    ")}`);
    console.log(`FAIL ${name}: ${tag}\n    ${problems.join("\n    ")}`);
  } else {
    console.log(`ok   ${name}: ${tag}`);
  }
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    data = text;
  }
  return { status: res.status, data, headers: res.headers };
}

async function journey() {
  const email = "jane.doe@example.com";
  await call("liveness", { path: "/healthz", expect: 200 });
  await call("readiness", { path: "/readyz", expect: 200 });
  await call("metrics (on their own listener, not the API's)", { path: "/metrics", expect: 404 });
  await call("the contract in YAML", { path: "/openapi.yaml", expect: 200 });
  await call("the contract in JSON", { path: "/openapi.json", expect: 200 });
  await call("the reference page", { path: "/docs", expect: 200 });
  await call("the reference renderer", { path: "/docs/redoc.standalone.js", expect: 200 });
  await call("the tenant's keys", { path: "/api/demo/.well-known/jwks.json", expect: 200 });

  await call("create an account", {
    method: "POST", path: "/api/demo/customer", expect: 200,
    json: { email, firstName: "Jane", postcode: "75001", consents_email: true, loyaltyTier: "gold" },
  });
  const sent = service.nextCode(email);
  const again = await call("create it again anonymously: a challenge", {
    method: "POST", path: "/api/demo/customer", expect: 202, json: { email, firstName: "Mallory" },
  });
  const code = await sent;
  const token = (await call("exchange the code", {
    method: "POST", path: "/api/demo/customer/authenticate?provider=otp", expect: 200,
    json: { challengeId: again.data.challengeId, code },
  })).data;
  await call("read the profile", {
    path: "/api/demo/customer", headers: { Authorization: `Bearer ${token}` }, expect: 200,
  });
  await call("update the account", {
    method: "POST", path: "/api/demo/customer", headers: { Authorization: `Bearer ${token}` }, expect: 200,
    json: { lastName: "Doe", city: "Paris" },
  });

  const other = "new.customer@example.com";
  const otherSent = service.nextCode(other);
  const asked = await call("ask for a code", {
    method: "POST", path: "/api/demo/customer/authenticate?provider=otp", expect: 202, json: { email: other },
  });
  const newToken = (await call("exchange it: the account is created", {
    method: "POST", path: "/api/demo/customer/authenticate?provider=otp", expect: 200,
    json: { challengeId: asked.data.challengeId, code: await otherSent },
  })).data;
  await call("read the new profile", {
    path: "/api/demo/customer", headers: { Authorization: `Bearer ${newToken}` }, expect: 200,
  });
  const plainSent = service.nextCode("plain@example.com");
  const plain = await call("ask for a code in a text/json body", {
    method: "POST", path: "/api/demo/customer/authenticate?provider=otp", expect: 202,
    headers: { "Content-Type": "text/json" }, json: { email: "plain@example.com" },
  });
  await call("exchange it for a text/plain token", {
    method: "POST", path: "/api/demo/customer/authenticate?provider=otp", expect: 200,
    headers: { "Content-Type": "application/vnd.customer+json", Accept: "text/plain" },
    json: { challengeId: plain.data.challengeId, code: await plainSent },
  });
  await call("ask for a code by text message", {
    method: "POST", path: "/api/demo/customer/authenticate?provider=otp", expect: 202,
    json: { phoneNumber: "+33612345678" },
  });
  return { email, token };
}

async function badInput({ email, token }) {
  // Requests the contract allows, that the service refuses.
  await call("an unknown provider", {
    method: "POST", path: "/api/demo/customer/authenticate?provider=nope", expect: 400, json: { email },
  });
  await call("no provider", { method: "POST", path: "/api/demo/customer/authenticate", expect: 400, json: { email } });
  await call("an unknown flow", {
    method: "POST", path: "/api/demo/customer?flow=nope", expect: 400, json: { email: "flow@example.com" },
  });
  await call("a token that is not one", {
    path: "/api/demo/customer", headers: { Authorization: "Bearer not.a.token" }, expect: 401,
  });
  await call("a tampered token", {
    path: "/api/demo/customer", headers: { Authorization: "Bearer " + token.slice(0, -2) + "xx" }, expect: 401,
  });
  await call("an unknown tenant", {
    path: "/api/acme/customer", headers: { Authorization: `Bearer ${token}` }, expect: 404,
  });
  await call("an invalid postcode", {
    method: "POST", path: "/api/demo/customer", expect: 412, json: { email: "pc@example.com", postcode: "ABCDE" },
  });
  await call("a birth date in the future", {
    method: "POST", path: "/api/demo/customer", expect: 412, json: { email: "born@example.com", birthDate: "2999-01-01" },
  });
  const sent = service.nextCode("wrong@example.com");
  const asked = await call("a code for a wrong-code try", {
    method: "POST", path: "/api/demo/customer/authenticate?provider=otp", expect: 202, json: { email: "wrong@example.com" },
  });
  const wrong = (await sent) === "000000" ? "111111" : "000000";
  await call("a wrong code", {
    method: "POST", path: "/api/demo/customer/authenticate?provider=otp", expect: 422,
    json: { challengeId: asked.data.challengeId, code: wrong },
  });
  await call("an unknown challenge", {
    method: "POST", path: "/api/demo/customer/authenticate?provider=otp", expect: 422,
    json: { challengeId: "0b7a6d0e-3f55-4d1c-9c55-2f7f6f0e6a11", code: "123456" },
  });
  await call("a new code too soon", {
    method: "POST", path: "/api/demo/customer/authenticate?provider=otp", expect: 429, json: { email: "wrong@example.com" },
  });
  // A client that accepts application/json only (as upstream declares errors) gets its problems so.
  const jsonOnly = { Accept: "application/json" };
  await call("an unknown tenant, for a client that accepts application/json only", {
    path: "/api/acme/customer", headers: { ...jsonOnly, Authorization: `Bearer ${token}` }, expect: 404, type: "application/json",
  });
  await call("an invalid postcode, for a client that accepts application/json only", {
    method: "POST", path: "/api/demo/customer", headers: jsonOnly, expect: 412, type: "application/json",
    json: { email: "pc.json@example.com", postcode: "ABCDE" },
  });
  await call("an unknown provider, for a client that accepts application/json only", {
    method: "POST", path: "/api/demo/customer/authenticate?provider=nope", headers: jsonOnly, expect: 400, type: "application/json",
    json: { email },
  });
  await call("an invalid postcode, for a client that accepts anything", {
    method: "POST", path: "/api/demo/customer", headers: { Accept: "*/*" }, expect: 412, type: "application/problem+json",
    json: { email: "pc.any@example.com", postcode: "ABCDE" },
  });
  await call("a body too large", {
    method: "POST", path: "/api/demo/customer", expect: 413,
    json: { email: "big@example.com", note: "x".repeat(70 << 10) },
  });

  // Requests the contract refuses: Prism must say so, and the answer must conform.
  const lenientCase = (name, c) => call(name, { via: "lenient", ...c });
  await lenientCase("a malformed email", {
    method: "POST", path: "/api/demo/customer", expect: 412, json: { email: "not-an-email", country: "France" },
  });
  await lenientCase("a field of the wrong type", {
    method: "POST", path: "/api/demo/customer", expect: 412, json: { email: "type@example.com", firstName: 42 },
  });
  await lenientCase("a body that is not an object", {
    method: "POST", path: "/api/demo/customer", expect: 400, json: ["jane"],
  });
  await lenientCase("a body that is not JSON", {
    method: "POST", path: "/api/demo/customer", expect: 415, headers: { "Content-Type": "text/plain" }, body: "email=jane",
  });
  await lenientCase("a code too long", {
    method: "POST", path: "/api/demo/customer/authenticate?provider=otp", expect: 400,
    json: { challengeId: "0b7a6d0e-3f55-4d1c-9c55-2f7f6f0e6a11", code: "1".repeat(40) },
  });
  await lenientCase("no token", { path: "/api/demo/customer", expect: 401 });
  await lenientCase("an Idempotency-Key with a space", {
    method: "POST", path: "/api/demo/customer", headers: { "Idempotency-Key": "a b" }, expect: 400, json: { email: "key@example.com" },
  });
}

// The upstream check must be able to fail.
for (const [status, body] of [[401, '{"status":"401"}'], [200, '"a string"']]) {
  if (checkUpstream("GET", "/api/demo/customer", status, "application/json", body)?.ok !== false) {
    failures.push(`the upstream validator accepts ${body} for ${status}`);
  }
}

// A stand-in for customerd that answers /healthz against the contract: the
// strict proxy in front of it must report it, or the check could never fail.
function startImpostor() {
  const srv = createServer((_, res) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end('{"status":"dying"}');
  });
  return new Promise((ok) => srv.listen(0, "127.0.0.1", () => ok(srv)));
}

async function control(impostor) {
  const prism = await startPrism(`http://127.0.0.1:${impostor.address().port}`, { errors: true });
  const res = await fetch(`${prism.url}/healthz`);
  const text = await res.text();
  if (res.status !== 500 || !text.includes("stoplight.io/prism/errors#VIOLATIONS")) {
    failures.push(`control: Prism let a non-conforming answer through: ${res.status} ${text.slice(0, 300)}`);
  } else {
    console.log("ok   control: Prism --errors reports an answer that breaks the contract");
  }
}

let impostor;
try {
  impostor = await startImpostor();
  service = await startCustomerd();
  [strict, lenient] = await Promise.all([
    startPrism(service.url, { errors: true }),
    startPrism(service.url, { errors: false }),
    control(impostor),
  ]);
  const ctx = await journey();
  await badInput(ctx);
} catch (err) {
  failures.push(String(err?.stack ?? err));
  console.error(err);
} finally {
  impostor?.close();
  await stopAll();
}
if (failures.length) {
  console.error(`\nconformance: ${failures.length} failure(s)`);
  process.exit(1);
}
console.log("\nconformance: every answer conforms to openapi.yaml (Prism) and, where it declares the status, to the upstream contract");
