export type { Store, StoreMutation } from "./types.js";
export { MemoryStore } from "./memory.js";
export { FileStore, StoreError, type FileStoreOptions } from "./file.js";
