// What `npm pack` ships: the built code, its types, the zone examples and the licence; no source maps that point at
// sources the tarball does not carry.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("the package tarball", () => {
  it("holds the build, its types and the LICENSE, and no source maps", () => {
    const [pack] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { encoding: "utf8" })) as { files: { path: string }[] }[];
    const files = pack!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(["LICENSE", "package.json", "README.md", "dist/src/main.js", "dist/src/index.d.ts"]));
    expect(files.filter((f) => f.endsWith(".map"))).toEqual([]);
    expect(files.filter((f) => !/^(dist\/src\/|zones\/|LICENSE$|README\.md$|package\.json$)/.test(f))).toEqual([]);
  });
});
