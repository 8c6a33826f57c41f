// The seed's web-api example: register web-api and user-api instances, then find the web-api
// instances of a version range carrying a tag. Run: node dist/examples/library/web-api.js
import { newServiceEntry, newServiceQuery, type DiscoveryApi } from "../../src/index.js";
import { isMain, runExample } from "./run.js";

export async function webApiExample(api: DiscoveryApi) {
  await api.registerService({
    ...newServiceEntry("web-api-1", "web-api", "1.2.0", "node-1", "10.0.1.10", 8080),
    tags: ["web", "api", "production"],
    metadata: { region: "eu-west", team: "platform" },
  });
  await api.registerService({
    ...newServiceEntry("web-api-2", "web-api", "1.3.1", "node-2", "10.0.1.11", 8080),
    tags: ["web", "api", "canary"],
    metadata: { region: "eu-west", team: "platform" },
  });
  await api.registerService({
    ...newServiceEntry("user-api-1", "user-api", "2.1.0", "node-1", "10.0.1.20", 8081),
    tags: ["api", "users", "production"],
    metadata: { region: "eu-west", team: "identity" },
  });

  const production = await api.discoverServices(newServiceQuery().withName("web-api").withTags(["production"]));
  const recent = await api.discoverServices(newServiceQuery().withName("web-api").withVersion("^1.3"));
  const platformApis = await api.discoverServices(newServiceQuery().withTags(["api"]).withMetadata("team", "platform"));
  return {
    production: production.map((s) => `${s.id} ${s.address}:${s.port}`),
    recent: recent.map((s) => `${s.id} v${s.version}`),
    platformApis: platformApis.map((s) => s.id),
  };
}

if (isMain(import.meta.url)) await runExample(webApiExample);
