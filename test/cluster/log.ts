// A pino logger whose lines a test reads back: the cluster's machines say what happened in their log, once per
// transition, and operators read those lines.
import pino, { type Logger } from "pino";

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export function captureLog(): { log: Logger; lines: LogLine[]; msgs: (level?: "info" | "warn" | "error") => string[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: "debug" }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  const levels = { info: 30, warn: 40, error: 50 };
  return { log, lines, msgs: (level) => lines.filter((l) => level === undefined || l.level === levels[level]).map((l) => l.msg) };
}
