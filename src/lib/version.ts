// The package version, read once from package.json so `/v1/status` and `--version` never drift from it.
// Sources run from src/lib/ (tests) and the build from dist/src/lib/, so look two and three levels up.
import { existsSync, readFileSync } from "node:fs";

function readVersion(): string {
  for (const rel of ["../../package.json", "../../../package.json"]) {
    const url = new URL(rel, import.meta.url);
    if (!existsSync(url)) continue;
    const pkg = JSON.parse(readFileSync(url, "utf8")) as { name?: string; version?: string };
    if (pkg.name === "homelab-discovery" && pkg.version) return pkg.version;
  }
  return "0.0.0-unknown";
}

export const VERSION: string = readVersion();
