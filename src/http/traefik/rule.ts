// The default rule as a template, in the part of Traefik's Go-template syntax that defaultRule uses in practice:
// {{ .Name }}, {{ normalize .Name }} and {{ index .Labels "key" }}. Anything else is refused, not half-run.
import { InvalidError } from "../../lib/errors.js";
import { normalize } from "./build.js";

type Model = { Name: string; Labels: Map<string, string> };

export function compileRule(template: string): (model: Model) => string {
  const parts: ((m: Model) => string)[] = [];
  let rest = template;
  for (;;) {
    const open = rest.indexOf("{{");
    if (open === -1) break;
    const close = rest.indexOf("}}", open);
    if (close === -1) throw new InvalidError(`invalid query: defaultRule has '{{' without '}}'`);
    const literal = rest.slice(0, open);
    parts.push(() => literal);
    parts.push(action(rest.slice(open + 2, close).trim()));
    rest = rest.slice(close + 2);
  }
  parts.push(() => rest);
  return (m) => parts.map((p) => p(m)).join("");
}

function action(text: string): (m: Model) => string {
  if (text === ".Name") return (m) => m.Name;
  if (/^normalize\s+\.Name$/.test(text)) return (m) => normalize(m.Name);
  const index = /^index\s+\.Labels\s+"([^"]*)"$/.exec(text);
  if (index) {
    const key = index[1]!;
    return (m) => m.Labels.get(key) ?? "";
  }
  throw new InvalidError(`invalid query: defaultRule may use {{ .Name }}, {{ normalize .Name }} and {{ index .Labels "key" }}, not {{ ${text} }}`);
}
