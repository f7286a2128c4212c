// The upstream contract, api/upstream/customer-api.openapi.json, as the
// checks read it: its oneOf read as anyOf, because upstream's
// oneOf [ProblemDetails, HttpValidationProblemDetails] can never match exactly
// once (both take any object: every problem, even {}, matches the two), and
// an answer validated against it (Ajv, JSON Schema 2020-12).
import { readFileSync } from "node:fs";
import { join } from "node:path";

import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

import { repo } from "./service.mjs";

/** A copy of node with every oneOf read as anyOf, its local $refs prefixed with refBase. */
function readAsAnyOf(node, refBase) {
  if (Array.isArray(node)) return node.map((n) => readAsAnyOf(n, refBase));
  if (node === null || typeof node !== "object") return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "oneOf") out.anyOf = readAsAnyOf(v, refBase);
    else if (k === "$ref" && typeof v === "string" && v.startsWith("#/")) out.$ref = `${refBase}${v}`;
    else out[k] = readAsAnyOf(v, refBase);
  }
  return out;
}

const source = JSON.parse(readFileSync(join(repo, "api/upstream/customer-api.openapi.json"), "utf8"));

/** The upstream document, its oneOf read as anyOf: what a gateway such as Prism can enforce. */
export const upstreamAsAnyOf = readAsAnyOf(source, "");

const upstream = readAsAnyOf(source, "upstream");
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
for (const f of ["int32", "int64", "float", "double"]) ajv.addFormat(f, true);
ajv.addSchema({ $id: "upstream", components: upstream.components });

const upstreamOps = Object.entries(upstream.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, op]) => ({
    method: method.toUpperCase(),
    path,
    re: new RegExp(`^${path.replace(/\{[^}]+\}/g, "[^/]+")}$`),
    op,
  })));
const validators = new Map();

/** What the upstream document says of this answer: null when it declares nothing. */
export function checkUpstream(method, path, status, contentType, text) {
  const found = upstreamOps.find((o) => o.method === method && o.re.test(path));
  if (!found) return null;
  const res = found.op.responses[String(status)];
  if (!res) return null;
  const content = res.content ?? {};
  if (Object.keys(content).length === 0) return { ok: true, note: "declared, no body schema" };
  const mt = contentType.split(";")[0].trim().toLowerCase();
  // Upstream declares its bodies as application/json, text/json and
  // text/plain only; our problems are application/problem+json, JSON too.
  const key = content[mt] ? mt : "application/json";
  const schema = content[key]?.schema;
  if (!schema) return { ok: true, note: "declared, no body schema" };
  const id = `${found.method} ${found.path} ${status} ${key}`;
  if (!validators.has(id)) validators.set(id, ajv.compile(schema));
  const validate = validators.get(id);
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    // A text/plain string (the token) is the text itself.
    if (key !== "text/plain" || schema.type !== "string") return { ok: false, note: `upstream ${key}: the body is not JSON` };
    body = text;
  }
  if (validate(body)) return { ok: true, note: `upstream ${key}` };
  return { ok: false, note: `upstream ${key}: ${ajv.errorsText(validate.errors)}` };
}
