/**
 * A typed client of customerd. The types in `schema.gen.ts` are generated from
 * openapi.yaml by openapi-typescript (`make sdk`); the requests go through
 * openapi-fetch, so every path, parameter, body and answer is checked by tsc.
 */
import createClient, { type Client, type ClientOptions, type Middleware } from "openapi-fetch";

import type { components, operations, paths } from "./schema.gen.js";

export type { components, operations, paths };
/** The administration API's types (admin.openapi.yaml), for an openapi-fetch client of the admin listener. */
export type * as admin from "./admin.gen.js";

type Schemas = components["schemas"];
/** A customer account. */
export type Customer = Schemas["Customer"];
/** A one-time code was sent: prove it with {@link Customerd.exchangeCode}. */
export type Challenge = Schemas["Challenge"];
/** Every error body: an RFC 9457 problem, with `errors` by field for invalid fields. */
export type Problem = Schemas["Problem"];
/** A problem that lists the invalid fields. */
export type ValidationProblem = Schemas["HttpValidationProblemDetails"];
/** What `authenticate` takes: for `otp`, a destination, then the challenge and its code. */
export type AuthenticationRequest = Schemas["AuthenticationRequest"];
/** A bearer token. */
export type Token = Schemas["Token"];

/** The raw openapi-fetch client over every path of the contract. */
export type CustomerdClient = Client<paths>;

/** Options of {@link Customerd}. */
export interface CustomerdOptions extends Omit<ClientOptions, "baseUrl"> {
  /** Where customerd answers, for instance `https://id.example.com`. */
  baseUrl: string;
  /** The tenant (brand) every call is for. */
  tenant: string;
}

/** Adds `Authorization: Bearer TOKEN` to the requests of one call. */
function withBearer(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { Authorization: `Bearer ${token}` };
}

/** Whether a problem lists invalid fields. */
export function isValidationProblem(p: Problem | undefined): p is ValidationProblem {
  return p !== undefined && typeof (p as ValidationProblem).errors === "object" && (p as ValidationProblem).errors !== null;
}

/**
 * The customer endpoints of one tenant. Each method answers openapi-fetch's
 * `{ data, error, response }`: `data` is the typed body of a 2xx answer,
 * `error` the typed problem of any other, `response` the raw answer.
 */
export class Customerd {
  /** The openapi-fetch client, for the paths this class does not wrap. */
  readonly client: CustomerdClient;
  readonly tenant: string;

  constructor({ tenant, ...options }: CustomerdOptions) {
    // customerd never redirects: a redirect comes from something else, and
    // following a 307 or 308 would send the same body (a one-time code, an
    // account) to wherever it points. Refused unless `redirect` says otherwise.
    this.client = createClient<paths>({ redirect: "error", ...options });
    this.tenant = tenant;
  }

  /** Adds an openapi-fetch middleware (logging, retries, tracing). */
  use(...middleware: Middleware[]): void {
    this.client.use(...middleware);
  }

  /**
   * Creates an account (200), or with a token updates the caller's (200). An
   * anonymous call for an identifier that exists answers 202 and a challenge.
   */
  upsertCustomer(customer: Customer, opts: { token?: string; flow?: string } = {}) {
    return this.client.POST("/api/{tenantId}/customer", {
      params: { path: { tenantId: this.tenant }, query: opts.flow === undefined ? {} : { flow: opts.flow } },
      body: customer,
      headers: withBearer(opts.token),
    });
  }

  /** Authenticates with a provider: for `otp`, see {@link askCode} and {@link exchangeCode}. */
  authenticate(provider: string, body: AuthenticationRequest) {
    return this.client.POST("/api/{tenantId}/customer/authenticate", {
      params: { path: { tenantId: this.tenant }, query: { provider } },
      body,
    });
  }

  /** Sends a one-time code to an email or a phone number; answers the challenge (202). */
  askCode(to: { email: string } | { phoneNumber: string }) {
    return this.authenticate("otp", to);
  }

  /** Exchanges a challenge's code for a bearer token (200). */
  exchangeCode(challengeId: string, code: string) {
    return this.authenticate("otp", { challengeId, code });
  }

  /** The profile of the customer the token was issued to. */
  getCustomer(token: string) {
    return this.client.GET("/api/{tenantId}/customer", {
      params: { path: { tenantId: this.tenant } },
      headers: withBearer(token),
    });
  }

  /**
   * Deletes the account the token was issued to (204): its personal data is
   * erased for good and every token it holds is refused from then on.
   */
  deleteCustomer(token: string) {
    return this.client.DELETE("/api/{tenantId}/customer", {
      params: { path: { tenantId: this.tenant } },
      headers: withBearer(token),
    });
  }

  /** The public keys that verify the tenant's tokens. */
  getJwks() {
    return this.client.GET("/api/{tenantId}/.well-known/jwks.json", {
      params: { path: { tenantId: this.tenant } },
    });
  }
}
