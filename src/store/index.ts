// store: where the registry's entries are durable. types.ts is the boundary (apply a batch, resolved once
// durable; load once at start); file.ts the embedded default (a CRC-checked journal with group commit, compacted
// into a snapshot); memory.ts keeps nothing across a restart. etcd is not a store: it replicates (src/cluster).
export type { Store, StoreMutation } from "./types.js";
export { MemoryStore } from "./memory.js";
export { FileStore, type FileStoreOptions } from "./file.js";
export { StoreError } from "./types.js";
