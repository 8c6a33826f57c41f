// Keeps entries in this process only: for tests and `--in-memory` use. Nothing survives a restart of the process.
import type { ServiceEntry } from "../model/index.js";
import type { Store, StoreMutation } from "./types.js";

export class MemoryStore implements Store {
  readonly kind = "memory";
  private readonly entries = new Map<string, ServiceEntry>();

  async load(): Promise<ServiceEntry[]> {
    return [...this.entries.values()];
  }

  async apply(mutations: readonly StoreMutation[]): Promise<void> {
    for (const m of mutations) {
      if (m.op === "put") this.entries.set(m.entry.id, m.entry);
      else this.entries.delete(m.id);
    }
  }

  async close(): Promise<void> {}
}
