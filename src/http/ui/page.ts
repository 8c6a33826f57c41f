// The page's HTML: hono/html escapes every interpolated value; the data the script starts from goes in a JSON
// script element (not executed; `<` escaped so no value can close it).
import { html, raw } from "hono/html";
import type { ServiceEntry } from "../../model/index.js";
import type { StoredPolicy } from "../../registry/index.js";

/** `routing`: the routing policies by service name, as GET /v1/routing lists them (the script shows each on its service). */
export function page(data: { services: readonly ServiceEntry[]; routing: Readonly<Record<string, StoredPolicy>>; index: number; nodeId: string; locked?: boolean }) {
  const json = JSON.stringify(data).replace(/</g, "\\u003c");
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>homelab-discovery: ${data.nodeId}</title>
<link rel="stylesheet" href="/ui/app.css">
<script type="module" src="/ui/app.js"></script>
</head>
<body>
<header>
  <h1>homelab-discovery <small>${data.nodeId}</small></h1>
  <span id="live" class="live off" title="event stream">connecting</span>
</header>
<form id="controls" autocomplete="off">
  <label>Filter <input id="filter" name="filter" type="search" placeholder="name=web tag=prod health=healthy meta.team=platform"></label>
  <label>Token <input id="token" name="token" type="password" placeholder="${data.locked ? "this server needs a token to read" : "for maintenance, checks, deregister"}"></label>
</form>
<p id="message" role="status"></p>
<main>
  <section id="services" aria-label="services"></section>
  <section id="log" aria-label="event log"><h2>Events</h2><ol id="events"></ol></section>
</main>
<script id="initial" type="application/json">${raw(json)}</script>
</body>
</html>`;
}
