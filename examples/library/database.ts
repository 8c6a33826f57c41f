// The seed's database discovery example: find the healthy primary of a database among its replicas.
// Run: node dist/examples/library/database.js
import { newServiceEntry, newServiceQuery, type DiscoveryApi } from "../../src/index.js";
import { isMain, runExample } from "./run.js";

export async function databaseExample(api: DiscoveryApi) {
  await api.registerService({
    ...newServiceEntry("postgres-1", "postgres", "15.4", "nas", "10.0.2.10", 5432),
    tags: ["database", "primary"],
    metadata: { role: "primary", engine: "postgresql" },
  });
  await api.registerService({
    ...newServiceEntry("postgres-2", "postgres", "15.4", "pi-1", "10.0.2.11", 5432),
    tags: ["database", "replica"],
    metadata: { role: "replica", engine: "postgresql" },
  });

  const primaries = await api.discoverServices(
    newServiceQuery().withName("postgres").withTags(["database"]).withMetadata("role", "primary").withHealthStatus("healthy"),
  );
  const primary = primaries[0];
  return { primary: primary ? `postgresql://${primary.address}:${primary.port}/` : null, candidates: primaries.length };
}

if (isMain(import.meta.url)) await runExample(databaseExample);
