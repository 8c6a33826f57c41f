// The API's description: GET /openapi.json, generated from the routes' zod schemas (document.ts), and a page
// that renders it at /docs from the server itself (page.ts): no CDN, no viewer bundle.
export { openApiRoutes } from "./routes.js";
export { DOCUMENTED, openApiDocument } from "./document.js";
