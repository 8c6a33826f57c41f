// undici, loaded on first use (an HTTP check, a forwarded write): it is a fifth of the process's start-up time
// (~150 ms measured), and a server without checks or a cluster never needs it. A leaf: it imports no part.
let undici: Promise<typeof import("undici")> | undefined;
export const loadUndici = (): Promise<typeof import("undici")> => (undici ??= import("undici"));
