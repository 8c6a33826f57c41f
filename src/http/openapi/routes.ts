import type { Hono } from "hono";
import { openApiDocument, openApiJson } from "./document.js";
import { docsPage } from "./page.js";

export function openApiRoutes(app: Hono): void {
  app.get("/openapi.json", (c) => c.body(openApiJson(), 200, { "content-type": "application/json" }));
  let page: string | undefined;
  app.get("/docs", (c) => c.html((page ??= docsPage(openApiDocument()))));
}
