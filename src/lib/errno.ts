// System errors as text: the errno code of a failed call, and one line that says what happened. A leaf.

/** The code of a Node system error ("ENOENT", "EACCES", "ERR_MODULE_NOT_FOUND"), or undefined. */
export function errnoOf(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string" ? err.code : undefined;
}

/** "ENOENT: no such file or directory, ..." for a system error (its code once), the message for anything else. */
export function errorText(err: unknown): string {
  const code = errnoOf(err);
  const message = err instanceof Error ? err.message : String(err);
  return code !== undefined && !message.startsWith(code) ? `${code}: ${message}` : message;
}
