// store: where the registry's entries are durable. types.ts is the boundary (apply a batch, resolved once
// durable; load once at start); file.ts the embedded default (a CRC-checked journal with group commit, compacted
// into a snapshot), lock.ts its one-server-per-directory lock, lines.ts how it reads both files (in chunks, line by
// line: they may outgrow V8's longest string); memory.ts keeps nothing across a restart. etcd is not a store: it
// replicates (src/cluster).
export type { Store, StoreMutation } from "./types.js";
export { MemoryStore } from "./memory.js";
export { FileStore, type FileStoreOptions } from "./file.js";
export { StoreError } from "./types.js";
