import type { Hono } from "hono";
import type { Compressor } from "../compress.js";
import { openApiDocument, openApiJson } from "./document.js";
import { docsPage } from "./page.js";

export function openApiRoutes(app: Hono, compressor: Compressor): void {
  app.get("/openapi.json", (c) => compressor.respond(c, openApiJson(), 200, { "content-type": "application/json" }));
  let page: string | undefined;
  app.get("/docs", (c) => c.html((page ??= docsPage(openApiDocument()))));
}
