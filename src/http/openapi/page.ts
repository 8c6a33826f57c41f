// /docs: the description rendered on the server as one plain page (operations by tag, their parameters, bodies
// and answers with the JSON Schemas folded), with the dashboard's style. Escaped by hono/html.
import { html } from "hono/html";

type Json = Record<string, any>;

export function docsPage(doc: Json): string {
  const byTag = new Map<string, [string, string, Json][]>();
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, Json>>)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = (op.tags as string[])[0] ?? "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)!.push([method, path, op]);
    }
  }
  const schema = (value: unknown) => html`<details><summary>schema</summary><pre>${JSON.stringify(value, null, 2)}</pre></details>`;
  const sections = [...byTag].map(
    ([tag, ops]) => html`<section><h2 id="${tag}">${tag}</h2>
${ops.map(
  ([method, path, op]) => html`<article class="service" id="${op.operationId}">
<h3><code>${method.toUpperCase()} ${path}</code>${op.security ? html` <span class="badge">admin token</span>` : ""}</h3>
<p>${op.summary}</p>
${op.parameters ? html`<ul>${(op.parameters as Json[]).map((p) => html`<li><code>${p.name}</code> <span class="muted">(${p.in}${p.required ? ", required" : ""})</span> ${p.description ?? ""}</li>`)}</ul>` : ""}
${op.requestBody ? html`<p>Body: <code>application/json</code></p>${schema(op.requestBody.content["application/json"].schema)}` : ""}
<ul>${Object.entries(op.responses as Record<string, Json>).map(([status, r]) => {
    const content = r.content ? Object.entries(r.content as Record<string, Json>)[0] : undefined;
    return html`<li><b>${status}</b> ${r.description}${content ? html` <code>${content[0]}</code>${content[1].schema?.type === "string" ? "" : schema(content[1].schema)}` : ""}</li>`;
  })}</ul>
</article>`,
)}</section>`,
  );
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${doc.info.title} API</title><link rel="stylesheet" href="/ui/app.css"></head>
<body><header><h1>${doc.info.title} API <small>${doc.info.version}</small></h1><a href="/openapi.json">openapi.json</a></header>
<p>${doc.info.description}</p>
<nav>${[...byTag.keys()].map((t) => html`<a href="#${t}">${t}</a> `)}</nav>
${sections}
<h2>Schemas</h2>${Object.entries(doc.components.schemas as Record<string, unknown>).map(([name, value]) => html`<h3 id="schema-${name}">${name}</h3>${schema(value)}`)}
</body></html>`.toString();
}
