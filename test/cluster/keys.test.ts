// The key layout: what each key under the prefix is, and the replicated range that leaves the claims out.
import { describe, expect, it } from "vitest";
import { KeyLayout, prefixEnd } from "../../src/cluster/keys.js";

describe("key layout", () => {
  const layout = new KeyLayout("/hd/test", "a");

  it("parses node keys, instance keys and claims; anything else is other", () => {
    expect(layout.parse(Buffer.from("/hd/test/nodes/b"))).toEqual({ kind: "node", nodeId: "b" });
    expect(layout.parse(Buffer.from("/hd/test/services/b/web-1"))).toEqual({ kind: "service", owner: "b", id: "web-1" });
    expect(layout.parse(Buffer.from("/hd/test/ids/web-1"))).toEqual({ kind: "claim", id: "web-1" });
    for (const other of ["/hd/test/services/b", "/hd/test/nodes/b/x", "/hd/other/nodes/b", "/hd/testx/nodes/b"]) expect(layout.parse(Buffer.from(other))).toEqual({ kind: "other" });
    expect(layout.parse(layout.service("x"))).toEqual({ kind: "service", owner: "a", id: "x" });
    expect(layout.parse(layout.claim("x"))).toEqual({ kind: "claim", id: "x" });
    expect(layout.parse(layout.node())).toEqual({ kind: "node", nodeId: "a" });
  });

  it("replicates [nodes/, end of services/): node and instance keys, never a claim", () => {
    const { start, end } = layout.replicated();
    const inRange = (k: string) => Buffer.compare(Buffer.from(k), start) >= 0 && Buffer.compare(Buffer.from(k), end) < 0;
    expect(["/hd/test/nodes/b", "/hd/test/services/b/x", "/hd/test/services/\u00ff"].map(inRange)).toEqual([true, true, true]);
    expect(["/hd/test/ids/x", "/hd/test/servicet", "/hd/test/nodes"].map(inRange)).toEqual([false, false, false]);
  });

  it("ends a prefix range as etcd's GetPrefixRangeEnd does", () => {
    expect(prefixEnd(Buffer.from("a/b"))).toEqual(Buffer.from("a/c"));
    expect(prefixEnd(Buffer.from([0x61, 0xff]))).toEqual(Buffer.from([0x62]));
    expect(prefixEnd(Buffer.from([0xff, 0xff]))).toEqual(Buffer.from([0]));
  });
});
