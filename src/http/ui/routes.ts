// GET /ui (the page), /ui/app.js and /ui/app.css (the script and style, from strings compiled into the package).
import type { Hono } from "hono";
import type { Discovery } from "../../registry/index.js";
import { SCRIPT } from "./script.js";
import { STYLE } from "./style.js";
import { page } from "./page.js";

const ASSET_HEADERS = { "cache-control": "no-cache" } as const;

export function uiRoutes(app: Hono, discovery: Discovery, opts: { readsClosed?: boolean } = {}): void {
  app.get("/ui", (c) => {
    // With a read token the page is a shell (a browser's navigation carries no token): the script reads the list
    // and follows the events with the token typed in.
    const locked = opts.readsClosed === true;
    const services = locked ? [] : discovery.discover({});
    // The policies with the list, read in the same turn: the page starts from one moment, and its stream from the
    // index after it (a routing change has an index of its own, so none falls between the two).
    const routing = locked ? {} : discovery.routing.all();
    return c.html(page({ services, routing, index: locked ? 0 : discovery.changes.current, nodeId: discovery.nodeId, locked }), 200, {
      // The page loads nothing from elsewhere: say so, so a browser refuses anything injected.
      "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    });
  });
  app.get("/ui/", (c) => c.redirect("/ui", 301));
  app.get("/ui/app.js", (c) => c.body(SCRIPT, 200, { ...ASSET_HEADERS, "content-type": "text/javascript; charset=utf-8" }));
  app.get("/ui/app.css", (c) => c.body(STYLE, 200, { ...ASSET_HEADERS, "content-type": "text/css; charset=utf-8" }));
}
