// Types of upstream.mjs, for the TypeScript checks that reuse it (sdk/upstream-client).

/** The upstream document, its oneOf read as anyOf. */
export declare const upstreamAsAnyOf: object;

/** What the upstream document says of this answer: null when it declares nothing. */
export declare function checkUpstream(
  method: string,
  path: string,
  status: number,
  contentType: string,
  text: string,
): { ok: boolean; note: string } | null;
