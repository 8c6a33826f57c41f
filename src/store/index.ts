export type { Store, StoreMutation } from "./types.js";
export { MemoryStore } from "./memory.js";
