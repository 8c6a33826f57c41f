// The store boundary: every registry write goes through `apply` and is acknowledged only once it resolves.
// Implementations: memory.ts and the durable embedded store (file.ts).
import { UnavailableError } from "../lib/errors.js";
import type { ServiceEntry } from "../model/index.js";

/**
 * The store cannot be read (startup must stop rather than start empty over data) or written (the API answers
 * 503 with this message: the write was not applied).
 */
export class StoreError extends UnavailableError {
  override name = "StoreError";
}

export type StoreMutation = { readonly op: "put"; readonly entry: ServiceEntry } | { readonly op: "delete"; readonly id: string };

export interface Store {
  /** A short name for logs and stats ("memory", "file", "etcd"). */
  readonly kind: string;
  /** Everything stored, read once at start. */
  load(): Promise<ServiceEntry[]>;
  /** Applies a batch all-or-nothing; resolves once it is durable (for stores that are). */
  apply(mutations: readonly StoreMutation[]): Promise<void>;
  close(): Promise<void>;
  /** Why the store refuses every write until a restart, if it does (a journal that could not be written). */
  readonly failure?: Error | undefined;
}
