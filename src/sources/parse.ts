// Services files as values: JSON (with the offset of a syntax error, which V8 does not always give) and YAML, by
// file extension, and an offset as line:column, so every problem is reported at its place in the file.

export type ParseResult = { ok: true; value: unknown } | { ok: false; reason: string; offset: number | undefined };
export type Parser = (text: string) => ParseResult;

/** Parsers by extension. yaml is loaded on the first load of a services directory, not at every start. */
let parsers: Promise<ReadonlyMap<string, Parser>> | undefined;
export function fileParsers(): Promise<ReadonlyMap<string, Parser>> {
  parsers ??= import("yaml").then((yaml) => {
    const parseYaml = yamlParser(yaml);
    return new Map([
      [".json", parseJson],
      [".yaml", parseYaml],
      [".yml", parseYaml],
    ]);
  });
  return parsers;
}

function yamlParser(yaml: typeof import("yaml")): Parser {
  return (text) => {
    // YAML 1.2 core schema (the package's default): `no` stays a string, duplicate keys are errors.
    const doc = yaml.parseDocument(text, { prettyErrors: false });
    const [error] = doc.errors;
    if (error !== undefined) return { ok: false, reason: `invalid YAML: ${oneLine(error.message)}`, offset: error.pos[0] };
    try {
      return { ok: true, value: doc.toJS() };
    } catch (err) {
      // e.g. "Excessive alias count": aliases that would expand the document beyond reason.
      return { ok: false, reason: `invalid YAML: ${oneLine(err instanceof Error ? err.message : String(err))}`, offset: undefined };
    }
  };
}

function parseJson(text: string): ParseResult {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // V8 names the offset ("... in JSON at position 42", Node 22 adds "(line 3 column 7)"), except for
    // "Unexpected token 'x', "<text>" is not valid JSON": then we find the offset ourselves.
    const at = /\bat position (\d+)/.exec(message);
    let offset = at ? Number(at[1]) : jsonErrorOffset(text);
    // An error at the end of the input (only blanks left) is shown just after the last character, not on a line
    // past the end of the file.
    if (offset !== undefined && /^[ \t\n\r]*$/.test(text.slice(offset))) offset = text.replace(/[ \t\n\r]+$/, "").length;
    const reason = message
      .replace(/ (in JSON )?at position \d+.*$/s, "")
      .replace(/^(Unexpected token '.'), .*is not valid JSON$/su, "$1");
    return { ok: false, reason: `invalid JSON: ${oneLine(reason)}`, offset };
  }
}

/** The offset of the first syntax error in text, or undefined if there is none (or it nests too deep to say). */
export function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++;
  };
  const expect = (ch: string) => {
    ws();
    if (text[i] !== ch) throw new SyntaxAt(i);
    i++;
  };
  const string = () => {
    if (text[i] !== '"') throw new SyntaxAt(i);
    i++;
    for (;;) {
      const c = text.charCodeAt(i);
      if (Number.isNaN(c) || c < 0x20) throw new SyntaxAt(i);
      if (c === 0x22) return void i++;
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === "u") {
          for (let k = i + 2; k < i + 6; k++) if (!/[0-9a-fA-F]/.test(text[k] ?? "")) throw new SyntaxAt(k);
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else throw new SyntaxAt(i + 1);
      } else i++;
    }
  };
  const digits = () => {
    if (!isDigit(text[i])) throw new SyntaxAt(i);
    while (isDigit(text[i])) i++;
  };
  const number = () => {
    if (text[i] === "-") i++;
    if (text[i] === "0") i++;
    else digits();
    if (text[i] === ".") {
      i++;
      digits();
    }
    if (text[i] === "e" || text[i] === "E") {
      i++;
      if (text[i] === "+" || text[i] === "-") i++;
      digits();
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      ws();
      if (text[i] === close) return void i++;
      for (;;) {
        if (c === "{") {
          ws();
          string();
          expect(":");
        }
        value();
        ws();
        if (text[i] === ",") i++;
        else return expect(close);
      }
    }
    if (c === '"') return string();
    if (c === "-" || isDigit(c)) return number();
    for (const literal of ["true", "false", "null"]) {
      if (c !== literal[0]) continue;
      let k = 0;
      while (k < literal.length && text[i + k] === literal[k]) k++;
      if (k === literal.length) return void (i += k);
      throw new SyntaxAt(i + k);
    }
    throw new SyntaxAt(i);
  };
  try {
    value();
    ws();
    return i < text.length ? i : undefined;
  } catch (err) {
    if (err instanceof SyntaxAt) return err.offset;
    return undefined; // RangeError: nested deeper than the stack allows
  }
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

class SyntaxAt {
  constructor(readonly offset: number) {}
}

/** 1-based line and column (in UTF-16 units) of an offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lastNewline = before.lastIndexOf("\n");
  let line = 1;
  for (let k = before.indexOf("\n"); k >= 0; k = before.indexOf("\n", k + 1)) line++;
  return { line, column: before.length - lastNewline };
}

/** Control characters (a newline token in a V8 message) would break one-problem-per-line messages. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f]/g, (c) => JSON.stringify(c).slice(1, -1));
}
