// System errors as text: the errno code of a failed call, and one line that says what happened. A leaf.
import { getSystemErrorMap } from "node:util";

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

/** "read-only file system (EROFS)": what the system says of a failed call, without the call or its path. */
export function reasonText(err: unknown): string {
  const code = errnoOf(err);
  const errno = typeof err === "object" && err !== null && "errno" in err && typeof err.errno === "number" ? err.errno : undefined;
  const description = errno === undefined ? undefined : getSystemErrorMap().get(errno)?.[1];
  if (code !== undefined && description !== undefined) return `${description} (${code})`;
  return err instanceof Error ? err.message : String(err);
}
