/**
 * A client generated from the upstream document alone (openapi-typescript +
 * openapi-fetch over api/upstream/customer-api.openapi.json), driven only with
 * what that document declares, against a fresh customerd behind Stoplight
 * Prism proxying the upstream document with --errors. Every answer is also
 * validated against upstream by the validator of `make conformance`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import createClient, { type Client, type Middleware } from "openapi-fetch";

import { startCustomerd, startPrism, stopAll, type Customerd } from "../../../scripts/openapi/service.mjs";
import { checkUpstream, upstreamAsAnyOf } from "../../../scripts/openapi/upstream.mjs";
import type { components, paths } from "./upstream.gen.js";

type ValidationProblem = components["schemas"]["HttpValidationProblemDetails"];
type Problem = components["schemas"]["ProblemDetails"] | ValidationProblem;

// demo identifies accounts by email; mobile by phone number, for the phone sign-in.
const config = `
tenants:
  demo: {}
  mobile:
    identifier: phoneNumber
`;

// Asked with Accept: application/json, customerd answers its problems so, as
// upstream declares them.
const problemTypes = ["application/json"];

/** Refuses any answer that Prism or the upstream validator finds outside the upstream document. */
const upstreamOnly: Middleware = {
  async onResponse({ request, response }) {
    const url = new URL(request.url);
    const text = await response.clone().text();
    const findings: string[] = [];
    const violations = response.headers.get("sl-violations");
    if (violations) findings.push(`prism: ${violations}`);
    if (text.includes("stoplight.io/prism/errors#")) findings.push(`prism answered itself: ${text.slice(0, 600)}`);
    const up = checkUpstream(request.method, url.pathname, response.status, response.headers.get("content-type") ?? "", text);
    if (up === null) findings.push("upstream declares no such answer");
    else if (!up.ok) findings.push(up.note);
    if (findings.length) throw new Error(`${request.method} ${url.pathname}${url.search} → ${response.status}: ${findings.join("; ")}`);
    return undefined;
  },
};

let service: Customerd;
let api: Client<paths>;

before(async () => {
  service = await startCustomerd({ config });
  const gateway = await startPrism(service.url, { errors: true, spec: upstreamAsAnyOf });
  // Upstream declares its errors as application/json: what such a client accepts.
  api = createClient<paths>({ baseUrl: gateway.url, headers: { Accept: "application/json" } });
  api.use(upstreamOnly);
});
after(stopAll);

function upsert(tenantId: string, body: Record<string, unknown>, token?: string) {
  return api.POST("/api/{tenantId}/customer", {
    params: { path: { tenantId } },
    body,
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
  });
}

function authenticate(tenantId: string, provider: string, body: Record<string, unknown>) {
  return api.POST("/api/{tenantId}/customer/authenticate", {
    params: { path: { tenantId }, query: { provider } },
    body,
  });
}

function profile(tenantId: string, token: string) {
  return api.GET("/api/{tenantId}/customer", {
    params: { path: { tenantId } },
    headers: { Authorization: `Bearer ${token}` },
  });
}

/** Creates the account, then sends it again: upstream's 202, whose body the client never reads. */
async function codeFor(tenantId: string, contact: Record<string, string>, to: string): Promise<string> {
  const created = await upsert(tenantId, { ...contact, firstName: "Jane" });
  assert.equal(created.response.status, 200, JSON.stringify(created.error));
  const sent = service.nextCode(to);
  const again = await upsert(tenantId, contact);
  assert.equal(again.response.status, 202, JSON.stringify(again.error));
  return sent;
}

/** A problem as upstream declares it, for the status expected. */
function assertProblem(error: Problem | undefined, response: Response, status: number): Problem {
  assert.equal(response.status, status);
  assert.ok(error && typeof error === "object", `a ${status} answers a problem`);
  const type = (response.headers.get("content-type") ?? "").split(";")[0]!;
  assert.ok(problemTypes.includes(type), `Content-Type ${type}`);
  assert.equal(error.status, status);
  assert.equal(typeof error.title, "string");
  return error;
}

describe("a client generated from the upstream document alone", () => {
  const email = "jane.doe@example.com";
  let token = "";

  it("creates an account, asks for a code with POST /customer (202) and exchanges {email, code} for a JSON token", async () => {
    const code = await codeFor("demo", { email }, email);
    assert.match(code, /^\d{6}$/, "the log sender wrote the code");

    const { data, error, response } = await authenticate("demo", "otp", { email, code });
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
    assert.equal(typeof data, "string");
    token = data!;
    assert.equal(token.split(".").length, 3, "a compact JWS");
  });

  it("reads the profile with the token", async () => {
    const { data, error, response } = await profile("demo", token);
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.equal(data?.email, email);
    assert.equal(data?.emailVerified, true);
  });

  it("updates the account with the token", async () => {
    const { data, error, response } = await upsert("demo", { lastName: "Doe" }, token);
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.equal(data?.lastName, "Doe");
  });

  it("signs in by phone number with {phoneNumber, code}, the token as text/plain", async () => {
    const phoneNumber = "+33612345678";
    const code = await codeFor("mobile", { phoneNumber }, phoneNumber);

    const { data, error, response } = await api.POST("/api/{tenantId}/customer/authenticate", {
      params: { path: { tenantId: "mobile" }, query: { provider: "otp" } },
      body: { phoneNumber, code },
      headers: { Accept: "text/plain" },
      parseAs: "text",
    });
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
    assert.equal(data!.split(".").length, 3, "a compact JWS, as the text itself");

    const me = await profile("mobile", data!);
    assert.equal(me.response.status, 200, JSON.stringify(me.error));
    assert.equal(me.data?.phoneNumber, phoneNumber);
    assert.equal(me.data?.phoneNumberVerified, true);
  });
});

describe("the problems upstream declares", () => {
  it("400: an unknown provider", async () => {
    const { data, error, response } = await authenticate("demo", "nope", { email: "a@example.com" });
    assert.equal(data, undefined);
    assertProblem(error, response, 400);
  });

  it("401: a token that is not one", async () => {
    const { error, response } = await profile("demo", "not.a.token");
    assertProblem(error, response, 401);
  });

  it("412: an invalid field, listed by name", async () => {
    const { error, response } = await upsert("demo", { email: "pc@example.com", postcode: "ABCDE" });
    // A 412 is upstream's "validation failed": its problem lists the fields.
    const problem = assertProblem(error, response, 412) as ValidationProblem;
    assert.ok(problem.errors?.postcode?.length, JSON.stringify(problem));
  });

  it("422: a wrong code, after which the right one still works", async () => {
    const email = "wrong.code@example.com";
    const code = await codeFor("demo", { email }, email);
    const wrong = code === "000000" ? "111111" : "000000";
    const refused = await authenticate("demo", "otp", { email, code: wrong });
    assert.equal(refused.data, undefined);
    assertProblem(refused.error, refused.response, 422);

    const { error, response } = await authenticate("demo", "otp", { email, code });
    assert.equal(response.status, 200, JSON.stringify(error));
  });
});

describe("the checks can fail", () => {
  it("the gateway refuses an answer upstream does not declare (authenticate's 202)", async () => {
    await assert.rejects(
      authenticate("demo", "otp", { email: "asked@example.com" }),
      /prism answered itself.*Unable to match the returned status code/,
    );
  });

  it("the validator refuses a body upstream does not declare", () => {
    const token = checkUpstream("POST", "/api/demo/customer/authenticate", 200, "application/json", '{"token":"x"}');
    assert.equal(token?.ok, false);
    assert.equal(checkUpstream("POST", "/api/demo/customer/authenticate", 202, "application/json", "{}"), null);
  });
});
