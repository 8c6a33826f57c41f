// Errors are values with a kind. The HTTP layer maps kinds to status codes in one place (src/http/errors.ts),
// the client maps them back, so embedded and remote callers see the same typed failures.

export type ErrorKind = "invalid" | "not_found" | "conflict" | "unavailable" | "unauthorized" | "forbidden" | "internal";

export interface ErrorIssue {
  path: (string | number)[];
  message: string;
}

export class DiscoveryError extends Error {
  readonly kind: ErrorKind;
  readonly issues: ErrorIssue[] | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(kind: ErrorKind, message: string, opts: { issues?: ErrorIssue[]; details?: Record<string, unknown> } = {}) {
    super(message);
    this.name = "DiscoveryError";
    this.kind = kind;
    this.issues = opts.issues;
    this.details = opts.details;
  }
}

export class InvalidError extends DiscoveryError {
  constructor(message: string, issues?: ErrorIssue[], details?: Record<string, unknown>) {
    super("invalid", message, { ...(issues ? { issues } : {}), ...(details ? { details } : {}) });
    this.name = "InvalidError";
  }
}

export class NotFoundError extends DiscoveryError {
  constructor(message: string) {
    super("not_found", message);
    this.name = "NotFoundError";
  }
}

export class ConflictError extends DiscoveryError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("conflict", message, details ? { details } : {});
    this.name = "ConflictError";
  }
}

export class UnavailableError extends DiscoveryError {
  constructor(message: string) {
    super("unavailable", message);
    this.name = "UnavailableError";
  }
}

export class UnauthorizedError extends DiscoveryError {
  constructor(message: string) {
    super("unauthorized", message);
    this.name = "UnauthorizedError";
  }
}

/** A valid token without the scope the route needs (401 is for no token, or one the server does not know). */
export class ForbiddenError extends DiscoveryError {
  constructor(message: string) {
    super("forbidden", message);
    this.name = "ForbiddenError";
  }
}

export const ERROR_KINDS: readonly ErrorKind[] = ["invalid", "not_found", "conflict", "unavailable", "unauthorized", "forbidden", "internal"];

/** Builds the typed error for a kind; the client uses it to turn an API error body back into a value. */
export function errorOfKind(kind: ErrorKind, message: string, issues?: ErrorIssue[], details?: Record<string, unknown>): DiscoveryError {
  switch (kind) {
    case "invalid":
      return new InvalidError(message, issues, details);
    case "not_found":
      return new NotFoundError(message);
    case "conflict":
      return new ConflictError(message, details);
    case "unavailable":
      return new UnavailableError(message);
    case "unauthorized":
      return new UnauthorizedError(message);
    case "forbidden":
      return new ForbiddenError(message);
    default:
      return new DiscoveryError("internal", message);
  }
}
