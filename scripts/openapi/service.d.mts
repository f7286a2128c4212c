// Types of service.mjs, for the TypeScript checks that reuse it (sdk/upstream-client).

export declare const here: string;
export declare const repo: string;

export interface Customerd {
  url: string;
  /** Every JSON line the service logged. */
  lines: Record<string, unknown>[];
  /**
   * The next one-time code the log sender writes for `to`: call it before the
   * request that sends the code, the log line may come after the answer.
   */
  nextCode(to: string): Promise<string>;
}

export declare function startCustomerd(options?: { config?: string }): Promise<Customerd>;

export interface Prism {
  url: string;
  log: string[];
}

export declare function startPrism(target: string, options: { errors: boolean; spec?: string | object }): Promise<Prism>;

export declare function stopAll(): Promise<void>;
