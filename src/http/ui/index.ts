// The dashboard at /ui: one server-rendered page (the shell and the list as it is, inlined as JSON) plus a small
// vanilla script that renders it, follows GET /v1/events and calls the admin routes with a token the operator
// enters. No build step, no CDN, no dependency beyond Hono; plain GET routes, so the API's hot routes pay nothing.
export { uiRoutes } from "./routes.js";
