// Zone file tokens: master file text into entries, one per logical line (parentheses join lines), and ZoneError,
// the file:line error every stage of reading a zone file throws.
import { InvalidError } from "../../lib/errors.js";

/** A zone file is wrong. `file` and `line` say where; the message starts with `file:line: ` (`file: ` when line is 0). */
export class ZoneError extends InvalidError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${line > 0 ? `${file}:${line}` : file}: ${reason}`, undefined, { file, line });
    this.name = "ZoneError";
  }
}

export interface Token {
  readonly text: string;
  readonly quoted: boolean;
  readonly line: number;
}

export interface Entry {
  readonly line: number;
  /** The entry's line starts with a blank: the owner is the previous record's. */
  readonly blankOwner: boolean;
  readonly tokens: Token[];
}

/**
 * Splits a master file into entries: one per logical line, where parentheses join physical lines. Comments run
 * from ";" to the end of the line; quoted strings keep their escapes for the field parsers.
 */
export function tokenize(text: string, file: string): Entry[] {
  const entries: Entry[] = [];
  let tokens: Token[] = [];
  let entryLine = 0;
  let blankOwner = false;
  let lineStartsBlank = false;
  let depth = 0;
  let parenLine = 0;
  let line = 1;
  let atLineStart = true;
  const flush = () => {
    if (tokens.length > 0) entries.push({ line: entryLine, blankOwner, tokens });
    tokens = [];
  };
  const push = (t: Token) => {
    if (tokens.length === 0) {
      entryLine = t.line;
      blankOwner = lineStartsBlank;
    }
    tokens.push(t);
  };
  let i = 0;
  const n = text.length;
  /** Reads from `from` up to a character `stop` accepts, keeping `\x` escapes (but not before a newline) whole. */
  const readToken = (from: number, stop: (c: string) => boolean): [string, number] => {
    let j = from;
    let s = "";
    while (j < n && !stop(text[j]!)) {
      if (text[j] === "\\" && j + 1 < n && text[j + 1] !== "\n") {
        s += text[j]! + text[j + 1]!;
        j += 2;
      } else {
        s += text[j]!;
        j += 1;
      }
    }
    return [s, j];
  };
  if (text.charCodeAt(0) === 0xfeff) i = 1; // a byte-order mark
  while (i < n) {
    const c = text[i]!;
    if (atLineStart) {
      lineStartsBlank = c === " " || c === "\t";
      atLineStart = false;
    }
    if (c === "\n") {
      line += 1;
      i += 1;
      atLineStart = true;
      if (depth === 0) flush();
    } else if (c === " " || c === "\t" || c === "\r") {
      i += 1;
    } else if (c === ";") {
      while (i < n && text[i] !== "\n") i += 1;
    } else if (c === "(") {
      if (depth === 0) parenLine = line;
      depth += 1;
      i += 1;
    } else if (c === ")") {
      if (depth === 0) throw new ZoneError(file, line, `")" without "("`);
      depth -= 1;
      i += 1;
    } else if (c === '"') {
      const [token, end] = readToken(i + 1, (d) => d === '"' || d === "\n");
      if (end >= n || text[end] === "\n") throw new ZoneError(file, line, "unterminated quoted string");
      push({ text: token, quoted: true, line });
      i = end + 1;
    } else {
      const [token, end] = readToken(i, (d) => d === " " || d === "\t" || d === "\r" || d === "\n" || d === ";" || d === "(" || d === ")" || d === '"');
      push({ text: token, quoted: false, line });
      i = end;
    }
  }
  if (depth > 0) throw new ZoneError(file, parenLine, `"(" is never closed`);
  flush();
  return entries;
}
