// examples/cluster/two-nodes.sh as a user runs it: one etcd, two nodes, a registration on A answered by B's
// DNS (dig) and API, a write through B landing on A, and A's instances gone from B once A stops.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { root } from "../e2e/built-server.js";

describe("examples/cluster/two-nodes.sh", () => {
  it("runs, and every step shows what it says", () => {
    const r = spawnSync("sh", ["examples/cluster/two-nodes.sh"], { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const sections = Object.fromEntries(
      r.stdout.split(/^== /m).filter(Boolean).map((s) => {
        const [title, ...body] = s.split("\n");
        return [title!.trim(), body.join("\n").trim()];
      }),
    );
    expect(JSON.parse(sections["register web-1 on node A"]!)).toMatchObject({ id: "web-1", nodeId: "node-a" });
    expect(sections["node B's DNS"]!.split("\n")).toEqual(["10.0.0.5", "1 2560 8080 0a000005.addr.home.arpa."]);
    expect(JSON.parse(sections["node B's API"]!).count).toBe(1);
    expect(sections["a write through B runs on its owner, A"]).toMatch(/^x-hd-owner: node-a/i);
    expect(JSON.parse(sections["node B's view of the cluster"]!).cluster.nodes.map((n: { nodeId: string }) => n.nodeId)).toEqual(["node-a", "node-b"]);
    expect(sections["node B's DNS after A left (empty)"]).toBe("");
    expect(r.stderr).not.toMatch(/"level":(40|50)/); // no warnings: clean joins and leaves
  });
});
