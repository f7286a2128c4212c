/**
 * The whole journey through the SDK against a real customerd: create an
 * account, ask for a code, read it from the log, exchange it, read the
 * profile, update and delete it; then the typed problems of 400, 401, 412 and 422.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { Customerd, isValidationProblem, type Problem } from "../src/index.js";
import { start, type Service } from "./customerd.js";

let service: Service;
let sdk: Customerd;

before(async () => {
  service = await start();
  sdk = new Customerd({ baseUrl: service.baseUrl, tenant: "demo" });
});
after(async () => service?.stop());

/** A problem as the contract describes it, for the status expected. */
function assertProblem(error: Problem | undefined, response: Response, status: number): Problem {
  assert.equal(response.status, status);
  assert.ok(error, `a ${status} answers a problem`);
  assert.match(response.headers.get("content-type") ?? "", /^application\/problem\+json/);
  assert.equal(error.status, status);
  assert.match(error.type ?? "", /^urn:customerd:problem:/);
  assert.equal(typeof error.title, "string");
  assert.equal(typeof error.requestId, "string");
  return error;
}

describe("the journey through the SDK", () => {
  const email = "jane.doe@example.com";
  let token = "";

  it("creates an account", async () => {
    const { data, error, response } = await sdk.upsertCustomer({
      email: " Jane.Doe@Example.COM ",
      firstName: "Jane",
      postcode: "75001",
      consents_email: true,
    });
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.ok(data && !("challengeId" in data));
    assert.equal(data.email, email);
    assert.equal(data.city, "Paris");
    assert.equal(data.country, "FR");
    assert.equal(data.emailVerified, false);
    assert.ok(data.id);
  });

  it("asks for a code, reads it from the log and exchanges it for a token", async () => {
    const sent = service.nextCode(email);
    const asked = await sdk.askCode({ email });
    assert.equal(asked.response.status, 202, JSON.stringify(asked.error));
    assert.ok(asked.data && typeof asked.data === "object");
    const challenge = asked.data;
    assert.equal(challenge.channel, "email");
    assert.equal(challenge.destination, "j***@e***.com");

    const code = await sent;
    assert.match(code, /^\d{6}$/, "the log sender wrote the code");

    const exchanged = await sdk.exchangeCode(challenge.challengeId, code);
    assert.equal(exchanged.response.status, 200, JSON.stringify(exchanged.error));
    assert.equal(typeof exchanged.data, "string");
    token = exchanged.data as string;
    assert.equal(token.split(".").length, 3, "a compact JWS");
  });

  it("reads the profile with the token", async () => {
    const { data, error, response } = await sdk.getCustomer(token);
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.ok(data);
    assert.equal(data.email, email);
    assert.equal(data.firstName, "Jane");
    assert.equal(data.emailVerified, true);
    assert.equal(data.provider, "otp");
    assert.ok(data.expiresAt && Date.parse(data.expiresAt) > Date.now());
  });

  it("updates the account with the token", async () => {
    const { data, error, response } = await sdk.upsertCustomer({ lastName: "Doe" }, { token });
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.ok(data && !("challengeId" in data));
    assert.equal(data.lastName, "Doe");
  });

  it("deletes the account, and the token opens nothing any more", async () => {
    const { error, response } = await sdk.deleteCustomer(token);
    assert.equal(response.status, 204, JSON.stringify(error));
    const after = await sdk.getCustomer(token);
    assertProblem(after.error, after.response, 401);
  });
});

describe("typed problems", () => {
  it("400: an unknown provider", async () => {
    const { data, error, response } = await sdk.authenticate("nope", { email: "a@example.com" });
    assert.equal(data, undefined);
    assertProblem(error, response, 400);
  });

  it("401: a token that is not one", async () => {
    const { error, response } = await sdk.getCustomer("not.a.token");
    assertProblem(error, response, 401);
    assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer/);
  });

  it("412: invalid account fields, listed by field", async () => {
    const { error, response } = await sdk.upsertCustomer({ email: "not-an-email", country: "France" });
    const problem = assertProblem(error, response, 412);
    assert.ok(isValidationProblem(problem));
    assert.ok(problem.errors.email?.length, JSON.stringify(problem));
    assert.ok(problem.errors.country?.length, JSON.stringify(problem));
  });

  it("422: a wrong code", async () => {
    const email = "wrong.code@example.com";
    const sent = service.nextCode(email);
    const asked = await sdk.askCode({ email });
    assert.equal(asked.response.status, 202);
    assert.ok(asked.data && typeof asked.data === "object");
    const code = await sent;
    const wrong = code === "000000" ? "111111" : "000000";
    const { data, error, response } = await sdk.exchangeCode(asked.data.challengeId, wrong);
    assert.equal(data, undefined);
    assertProblem(error, response, 422);
  });
});
