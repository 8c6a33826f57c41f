import { describe, expect, it } from "vitest";
import { AnswerTable } from "../../src/dns/answer-table.js";
import { parseQuery, type Query } from "../../src/dns/wire.js";
import { query } from "./helpers.js";

function parsed(name: string, type = 1): Query {
  const q = parseQuery(query(name, type));
  if (!q.ok) throw new Error("not a query");
  return q;
}

const answer = (text: string) => Buffer.from(text);
const find = (t: AnswerTable, q: Query, state = 0, hash = q.hash) => t.find(q.packet, q.questionEnd, hash, state);
const insert = (t: AnswerTable, q: Query, variants: Buffer[], state = 0, hash = q.hash) => t.insert(q.packet, q.questionEnd, hash, state, variants, false);

describe("AnswerTable", () => {
  it("finds an answer by the question's bytes, letters folded, and keeps types and EDNS states apart", () => {
    const t = new AnswerTable();
    const a = parsed("web.service.home.arpa", 1);
    insert(t, a, [answer("A")]);
    insert(t, parsed("web.service.home.arpa", 33), [answer("SRV")]);
    insert(t, a, [answer("A with EDNS")], 1);

    const upper = parsed("WEB.Service.HOME.arpa", 1);
    expect(upper.hash).toBe(a.hash);
    expect(t.next(find(t, upper)).toString()).toBe("A");
    expect(t.next(find(t, parsed("web.service.home.arpa", 33))).toString()).toBe("SRV");
    expect(t.next(find(t, a, 1)).toString()).toBe("A with EDNS");
    expect(find(t, a, 2)).toBe(-1);
    expect(find(t, parsed("web.service.home.arpa", 28))).toBe(-1);
    expect(find(t, parsed("wec.service.home.arpa", 1))).toBe(-1);
    // Same letters, other label boundaries: another name.
    expect(find(t, parsed("webs.ervice.home.arpa", 1))).toBe(-1);
    expect(t.size).toBe(3);
  });

  it("sends the variants in a given order when there is one (a routed split: turns over a few answers, kept once)", () => {
    const t = new AnswerTable();
    const q = parsed("web.service.home.arpa");
    const order = [0, 0, 1, 0, 2, 0, 0, 1];
    const entry = t.insert(q.packet, q.questionEnd, q.hash, 0, [answer("v1a"), answer("v1b"), answer("v2")], false, "s:web", order);
    const sent = Array.from({ length: 16 }, () => t.next(entry).toString());
    expect(sent).toEqual([...order, ...order].map((i) => ["v1a", "v1b", "v2"][i]));
    // An entry beside it keeps its own turns; an order naming a variant not given is refused.
    const other = parsed("db.service.home.arpa");
    t.insert(other.packet, other.questionEnd, other.hash, 0, [answer("db1"), answer("db2")], false, "s:db");
    expect([t.next(find(t, other)), t.next(find(t, other)), t.next(find(t, q))].map(String)).toEqual(["db1", "db2", "v1a"]);
    expect(() => t.insert(other.packet, other.questionEnd, other.hash + 1, 0, [answer("x")], false, undefined, [1])).toThrow(RangeError);
  });

  it("tells questions with the same hash apart by their bytes", () => {
    const t = new AnswerTable();
    const one = parsed("one.service.home.arpa");
    const two = parsed("two.service.home.arpa");
    insert(t, one, [answer("1")], 0, 42);
    insert(t, two, [answer("2")], 0, 42);
    expect(t.next(find(t, two, 0, 42)).toString()).toBe("2");
    expect(t.next(find(t, one, 0, 42)).toString()).toBe("1");
    expect(find(t, parsed("three.service.home.arpa"), 0, 42)).toBe(-1);
    // Only the name is folded: type 65 (0x0041, HTTPS) is not type 97 (0x0061), even under one hash.
    insert(t, parsed("web.service.home.arpa", 65), [answer("65")], 0, 7);
    expect(find(t, parsed("web.service.home.arpa", 97), 0, 7)).toBe(-1);
    expect(t.next(find(t, parsed("web.service.home.arpa", 65), 0, 7)).toString()).toBe("65");
  });

  it("rotates through an entry's variants and hands out copies", () => {
    const t = new AnswerTable();
    const q = parsed("web.service.home.arpa");
    const e = insert(t, q, [answer("v0"), answer("v1"), answer("v2")]);
    const sent = [0, 1, 2, 3, 4].map(() => t.next(e));
    expect(sent.map(String)).toEqual(["v0", "v1", "v2", "v0", "v1"]);
    sent[0]![0] = 0x58; // the caller patches its copy (the ID): the cached bytes stay
    expect(t.next(e).toString()).toBe("v2");
    expect(t.next(e).toString()).toBe("v0");
  });

  it("grows past its first capacity (slots, entries, keys, answer bytes) and finds every entry after", () => {
    const t = new AnswerTable();
    const queries = Array.from({ length: 5_000 }, (_, i) => parsed(`svc-${i}.service.home.arpa`, i % 2 ? 33 : 1));
    const big = Buffer.alloc(3_000, 7);
    queries.forEach((q, i) => insert(t, q, [i % 100 === 0 ? big : answer(`answer-${i}`)]));
    expect(t.size).toBe(5_000);
    queries.forEach((q, i) => expect(t.next(find(t, q)).equals(i % 100 === 0 ? big : answer(`answer-${i}`))).toBe(true));
  });

  it("clear() lets a burst of big answers' memory go", () => {
    const t = new AnswerTable();
    const small = t.bytes;
    const big = Buffer.alloc(60_000, 1);
    for (let i = 0; i < 100; i++) insert(t, parsed(`big-${i}.service.home.arpa`, 255), [big]);
    expect(t.bytes).toBeGreaterThan(6_000_000);
    t.clear();
    expect(t.bytes).toBeLessThan(small * 4);
    insert(t, parsed("web.service.home.arpa"), [answer("after")]);
    expect(t.next(find(t, parsed("web.service.home.arpa"))).toString()).toBe("after");
  });

  it("clear() forgets everything, and the table fills again", () => {
    const t = new AnswerTable();
    const queries = Array.from({ length: 2_000 }, (_, i) => parsed(`n${i}.service.home.arpa`));
    for (const q of queries) insert(t, q, [answer("old")]);
    t.clear();
    expect(t.size).toBe(0);
    for (const q of queries) expect(find(t, q)).toBe(-1);
    insert(t, queries[7]!, [answer("new")]);
    expect(t.next(find(t, queries[7]!)).toString()).toBe("new");
    expect(find(t, queries[8]!)).toBe(-1);
  });

  it("insertRotations() sends each rotation of a message's records, as insert() of the rotated messages would", () => {
    const t = new AnswerTable();
    // A head, three records of other sizes, a tail (an OPT, say).
    const message = Buffer.from("HEAD:aaaa|bb|cccccc|:TAIL");
    const starts = [5, 10, 13, 20];
    const q = parsed("web.service.home.arpa");
    const entry = t.insertRotations(q.packet, q.questionEnd, q.hash, 0, message, starts, [0, 2, 1], "s:web");
    expect([0, 1, 2, 3].map(() => t.next(entry).toString())).toEqual(["HEAD:aaaa|bb|cccccc|:TAIL", "HEAD:cccccc|aaaa|bb|:TAIL", "HEAD:bb|cccccc|aaaa|:TAIL", "HEAD:aaaa|bb|cccccc|:TAIL"]);
    expect(find(t, q)).toBe(entry);
    expect(t.invalidate("s:web")).toBe(1);
    expect(find(t, q)).toBe(-1);
  });

  it("clear() of a table that held a few entries (zeroing the slots it wrote, not all) forgets them all, also after removals and colliding hashes", () => {
    const t = new AnswerTable();
    const many = Array.from({ length: 3_000 }, (_, i) => parsed(`m${i}.service.home.arpa`));
    for (const q of many) insert(t, q, [answer("big")]); // a large slot array, then a few entries in it
    t.clear();
    for (let round = 0; round < 50; round++) {
      const few = Array.from({ length: 1 + (round % 70) }, (_, i) => parsed(`f${round}-${i}.service.home.arpa`));
      // Every third shares one hash: probe chains and backward-shift removal among them.
      few.forEach((q, i) => t.insert(q.packet, q.questionEnd, i % 3 === 0 ? 77 : q.hash, 0, [answer(`r${round}`)], false, `k${i % 4}`));
      if (round % 2 === 0) t.invalidate("k1");
      t.clear();
      expect(t.size).toBe(0);
      for (const [i, q] of few.entries()) expect(t.find(q.packet, q.questionEnd, i % 3 === 0 ? 77 : q.hash, 0)).toBe(-1);
      for (const q of many.slice(0, 20)) expect(find(t, q)).toBe(-1);
      // The index starts empty too: a key's entries after the clear are its only ones.
      const [a, b, c] = [many[round]!, many[round + 100]!, many[round + 200]!];
      t.insert(a.packet, a.questionEnd, a.hash, 0, [answer("a")], false, "k0");
      t.insert(b.packet, b.questionEnd, b.hash, 0, [answer("b")], false, "k1");
      t.insert(c.packet, c.questionEnd, c.hash, 0, [answer("c")], false, "k0");
      expect(t.invalidate("k0")).toBe(2);
      expect([find(t, a), find(t, c)]).toEqual([-1, -1]);
      expect(t.next(find(t, b)).toString()).toBe("b");
      t.clear();
      expect(t.invalidate("k1")).toBe(0);
    }
    insert(t, many[5]!, [answer("again")]);
    expect(t.next(find(t, many[5]!)).toString()).toBe("again");
  });

  it("invalidate(key) drops the entries under that key only, also among colliding hashes, and compacts what it left", () => {
    // A model of the table against random inserts and invalidations; few hash values, so probe chains run long
    // and removal has to shift entries back across each other, around the end of the slots (1,024 pairs: 0x3f8 is
    // eight from their end).
    let seed = 7;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    // 2 KB of dropped records and the table compacts itself: many times over the run.
    const t = new AnswerTable(2048);
    const model = new Map<string, string>(); // name -> key
    for (let step = 0; step < 4000; step++) {
      if (rand(4) > 0) {
        const name = `n${rand(300)}.service.home.arpa`;
        if (model.has(name)) continue;
        const key = `k${rand(20)}`;
        const q = parsed(name);
        t.insert(q.packet, q.questionEnd, (q.hash & 0x7) | 0x3f8, 0, [answer(name)], false, key);
        model.set(name, key);
      } else {
        const key = `k${rand(20)}`;
        const dropped = [...model].filter(([, k]) => k === key).length;
        expect(t.invalidate(key)).toBe(dropped);
        for (const [name, k] of model) if (k === key) model.delete(name);
      }
      if (step % 97 === 0 || step === 3999) {
        expect(t.size).toBe(model.size);
        for (let i = 0; i < 300; i++) {
          const name = `n${i}.service.home.arpa`;
          const q = parsed(name);
          const e = find(t, q, 0, (q.hash & 0x7) | 0x3f8);
          if (model.has(name)) expect(t.next(e).toString()).toBe(name);
          else expect(e).toBe(-1);
        }
      }
    }
  });

  it("an entry without a key is left by every invalidate(), and clear() drops the index with the entries", () => {
    const t = new AnswerTable();
    const kept = parsed("ns.home.arpa");
    const keyed = parsed("web.service.home.arpa");
    t.insert(kept.packet, kept.questionEnd, kept.hash, 0, [answer("ns")], false);
    t.insert(keyed.packet, keyed.questionEnd, keyed.hash, 0, [answer("web")], false, "s:web");
    expect(t.invalidate("s:web")).toBe(1);
    expect(t.invalidate("s:web")).toBe(0);
    expect(find(t, keyed)).toBe(-1);
    expect(t.next(find(t, kept)).toString()).toBe("ns");
    t.insert(keyed.packet, keyed.questionEnd, keyed.hash, 0, [answer("web")], false, "s:web");
    t.clear();
    expect(t.invalidate("s:web")).toBe(0);
    expect(t.size).toBe(0);
  });
});
