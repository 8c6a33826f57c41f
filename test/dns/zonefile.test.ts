// Static zones: parsing every master-file feature, every load error naming file:line, RFC 1034 lookups, the
// shipped sample, and a dns2 encode/decode round trip of each record type we emit.
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dns2 from "dns2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TYPE_CAA, type ZoneRr } from "../../src/dns/records.js";
import { loadZones, ZoneError, type StaticZone, type StaticZones } from "../../src/dns/zonefile/index.js";
import { TYPE } from "../../src/dns/wire.js";

const FIXTURES = join(import.meta.dirname, "fixtures", "zones");
const L = (name: string) => (name === "" ? [] : name.split("."));

let tmp: string;
let n = 0;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "zones-test-"));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** Writes files into a fresh directory; returns it. */
async function dirWith(files: Record<string, string>): Promise<string> {
  const dir = join(tmp, `d${n++}`);
  await mkdir(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

const SOA = "@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n";

/** Loads one zone file `t.example.zone` whose text is `body` (an SOA is prepended unless `soa` is false). */
async function loadOne(body: string, opts: { soa?: boolean; name?: string; domain?: string; cluster?: string } = {}) {
  const name = opts.name ?? "t.example.zone";
  const dir = await dirWith({ [name]: (opts.soa === false ? "" : SOA) + body });
  return { file: join(dir, name), dir, load: () => loadZones([dir], { domain: opts.domain, cluster: opts.cluster }) };
}

async function loadError(load: () => Promise<unknown>): Promise<ZoneError> {
  try {
    await load();
  } catch (err) {
    expect(err).toBeInstanceOf(ZoneError);
    return err as ZoneError;
  }
  throw new Error("expected a ZoneError");
}

describe("parsing a master file", () => {
  let zones: StaticZones;
  let lab: StaticZone;
  const at = (name: string, type: number) => {
    const r = lab.lookup(L(name), type);
    return r.kind === "success" ? r.records : [];
  };

  beforeAll(async () => {
    zones = await loadZones([FIXTURES, join(tmp, "does-not-exist")]);
    lab = zones.findZone(L("lab.example"))!;
  });

  it("takes the origin from the file name, and the SOA from the apex", () => {
    expect(zones.zones.map((z) => z.origin)).toEqual(["lab.example"]);
    expect(zones.files).toEqual([join(FIXTURES, "lab.example.zone"), join(FIXTURES, "hosts.inc")]);
    expect(lab.soa).toEqual({
      name: "lab.example",
      type: TYPE.SOA,
      class: 1,
      ttl: 300,
      primary: "ns1.lab.example",
      admin: "hostmaster.lab.example",
      serial: 7,
      refresh: 3600,
      retry: 600,
      expiration: 604800,
      minimum: 60,
    });
    expect(lab.negativeSoa.ttl).toBe(60);
  });

  it("reads relative and absolute names, '@', omitted owners, TTLs and classes in either order", () => {
    expect(at("lab.example", TYPE.NS)).toEqual([
      { name: "lab.example", type: TYPE.NS, class: 1, ttl: 300, domain: "ns1.lab.example", ns: "ns1.lab.example" },
      { name: "lab.example", type: TYPE.NS, class: 1, ttl: 300, domain: "ns2.lab.example", ns: "ns2.lab.example" },
    ]);
    expect(at("ns2.lab.example", TYPE.A)).toEqual([{ name: "ns2.lab.example", type: TYPE.A, class: 1, ttl: 600, address: "10.1.0.2" }]);
    expect(at("nas.lab.example", TYPE.A)).toEqual([{ name: "nas.lab.example", type: TYPE.A, class: 1, ttl: 120, address: "10.1.0.10" }]);
    // the owner carries over; the TTL does not (it comes from $TTL); the address is canonical
    expect(at("nas.lab.example", TYPE.AAAA)).toEqual([{ name: "nas.lab.example", type: TYPE.AAAA, class: 1, ttl: 300, address: "fd00::10" }]);
    expect(at("lab.example", TYPE.MX)).toEqual([{ name: "lab.example", type: TYPE.MX, class: 1, ttl: 300, priority: 10, exchange: "mail.lab.example" }]);
    expect(at("_http._tcp.lab.example", TYPE.SRV)).toEqual([
      { name: "_http._tcp.lab.example", type: TYPE.SRV, class: 1, ttl: 300, priority: 10, weight: 5, port: 80, target: "www.lab.example" },
    ]);
    expect(at("10.lab.example", TYPE.PTR)).toEqual([{ name: "10.lab.example", type: TYPE.PTR, class: 1, ttl: 300, domain: "nas.lab.example" }]);
    expect(at("lab.example", TYPE_CAA)).toEqual([{ name: "lab.example", type: TYPE_CAA, class: 1, ttl: 300, flags: 0, tag: "issue", value: "letsencrypt.org" }]);
  });

  it("reads TXT strings: quotes, escapes, ';' inside quotes, several strings, parentheses across lines", () => {
    expect(at("txt.lab.example", TYPE.TXT)).toEqual([
      { name: "txt.lab.example", type: TYPE.TXT, class: 1, ttl: 300, data: ['a "quoted" string; not a comment', "plain", "ABC", "café", "on a", "second line"] },
    ]);
    expect(at("lab.example", TYPE.TXT)[0]).toMatchObject({ data: ["v=spf1 -all"] });
  });

  it("follows $ORIGIN, and $INCLUDE relative to the file with its own origin and $TTL", () => {
    expect(at("a.b.deep.lab.example", TYPE.A)).toMatchObject([{ address: "10.1.0.20" }]);
    expect(at("printer.sub.lab.example", TYPE.A)).toEqual([{ name: "printer.sub.lab.example", type: TYPE.A, class: 1, ttl: 30, address: "10.1.0.50" }]);
    expect(at("sub.lab.example", TYPE.TXT)).toMatchObject([{ data: ["included"], ttl: 30 }]);
    // after the include: the including file's origin and $TTL again
    expect(at("after.lab.example", TYPE.A)).toEqual([{ name: "after.lab.example", type: TYPE.A, class: 1, ttl: 300, address: "10.1.0.40" }]);
    expect(lab.recordCount).toBe(24);
  });

  it("reads numeric owners, as in reverse zones, and escapes in names", async () => {
    const dir = await dirWith({
      "1.168.192.in-addr.arpa.zone": `${SOA}10 PTR nas.home.arpa.\n11 PTR pr\\105nter.home.arpa.\n`,
    });
    const z = (await loadZones([dir])).findZone(L("10.1.168.192.in-addr.arpa"))!;
    expect(z.origin).toBe("1.168.192.in-addr.arpa");
    expect(z.lookup(L("10.1.168.192.in-addr.arpa"), TYPE.PTR)).toMatchObject({ kind: "success", records: [{ domain: "nas.home.arpa" }] });
    expect(z.lookup(L("11.1.168.192.in-addr.arpa"), TYPE.PTR)).toMatchObject({ kind: "success", records: [{ domain: "printer.home.arpa" }] });
  });

  it("keeps one copy of duplicate records and one TTL per RRset (the smallest)", async () => {
    const { load } = await loadOne("x 100 A 10.0.0.1\nx 50 A 10.0.0.2\nx 200 A 10.0.0.1\n");
    const z = (await load()).zones[0]!;
    expect(z.lookup(L("x.t.example"), TYPE.A).records.map((r) => [r.ttl, (r as { address: string }).address])).toEqual([
      [50, "10.0.0.1"],
      [50, "10.0.0.2"],
    ]);
  });

  it("uses defaultTtl when there is no $TTL, and reads BIND durations", async () => {
    const dir = await dirWith({ "t.example.zone": "@ SOA ns1 hostmaster 1 1h 10m 1w1d 1h30m\nx A 10.0.0.1\ny 2h A 10.0.0.2\n" });
    const z = (await loadZones([dir], { defaultTtl: 42 })).zones[0]!;
    expect(z.soa).toMatchObject({ ttl: 42, refresh: 3600, retry: 600, expiration: 691200, minimum: 5400 });
    expect(z.lookup(L("x.t.example"), TYPE.A).records[0]!.ttl).toBe(42);
    expect(z.lookup(L("y.t.example"), TYPE.A).records[0]!.ttl).toBe(7200);
  });

  it("reads CRLF files and ignores files not ending in .zone, and dotfiles", async () => {
    const dir = await dirWith({
      "crlf.example.zone": "$TTL 60\r\n@ SOA ns1 hostmaster ( 1\r\n 2 3 4 5 )\r\nx A 10.0.0.1 ; note\r\n",
      "README.md": "not a zone",
      "notes.zone.bak": "garbage (",
      ".hidden.zone": "garbage (",
    });
    const zones = await loadZones([dir]);
    expect(zones.zones.map((z) => z.origin)).toEqual(["crlf.example"]);
    expect(zones.zones[0]!.lookup(L("x.crlf.example"), TYPE.A).records).toMatchObject([{ address: "10.0.0.1", ttl: 60 }]);
  });

  it("reads several directories and finds the longest zone containing a name", async () => {
    const outer = await dirWith({ "example.zone": `${SOA}www A 10.0.0.1\n` });
    const inner = await dirWith({ "lab.example.zone": `${SOA}www A 10.0.0.2\n` });
    const zones = await loadZones([outer, inner]);
    expect(zones.findZone(L("www.lab.example"))?.origin).toBe("lab.example");
    expect(zones.findZone(L("WWW.Lab.EXAMPLE"))?.origin).toBe("lab.example");
    expect(zones.findZone(L("lab.example"))?.origin).toBe("lab.example");
    expect(zones.findZone(L("www.example"))?.origin).toBe("example");
    expect(zones.findZone(L("example"))?.origin).toBe("example");
    expect(zones.findZone(L("xample"))).toBeUndefined();
    expect(zones.findZone(L("www.other"))).toBeUndefined();
    expect(zones.findZone([])).toBeUndefined();
  });
});

describe("errors name the file and the line", () => {
  const cases: [string, string, number, string][] = [
    ["a bad IPv4 address", "x A 10.0.0.300\n", 2, 'bad IPv4 address "10.0.0.300" in A record'],
    ["an IPv4 address with leading zeros", "x A 10.0.0.01\n", 2, 'bad IPv4 address "10.0.0.01" in A record'],
    ["a bad IPv6 address", "x AAAA fd00::1::2\n", 2, 'bad IPv6 address "fd00::1::2" in AAAA record'],
    ["an IPv6 address with a zone index", "x AAAA fe80::1%eth0\n", 2, 'bad IPv6 address "fe80::1%eth0" in AAAA record'],
    ["an IPv4 address in AAAA", "x AAAA 10.0.0.1\n", 2, 'bad IPv6 address "10.0.0.1" in AAAA record'],
    ["an unknown type", "x FOO 1\n", 2, 'unknown record type "FOO"'],
    ["an unsupported type", "x HINFO cpu os\n", 2, "record type HINFO is not supported"],
    ["another class", "x CH A 10.0.0.1\n", 2, "class CH is not supported (only IN)"],
    ["no type", "x 300 IN\n", 2, "missing record type"],
    ["too few fields", "x MX 10\n", 2, "MX record needs a preference and an exchange"],
    ["too many fields", "x A 10.0.0.1 10.0.0.2\n", 2, 'unexpected "10.0.0.2" after A record'],
    ["a number out of range", "x SRV 0 0 70000 y\n", 2, 'bad port in SRV record "70000": a number from 0 to 65535'],
    ["a bad MX preference", "x MX ten y\n", 2, 'bad preference in MX record "ten": a number from 0 to 65535'],
    ["a TTL above 2^31-1", "x 2147483648 A 10.0.0.1\n", 2, 'TTL "2147483648" is above the maximum 2147483647 seconds (RFC 2181)'],
    ["a bad $TTL", "$TTL soon\n", 2, 'bad TTL "soon": seconds, or a duration such as 1h30m'],
    ["a TXT string over 255 bytes", `x TXT "${"a".repeat(256)}"\n`, 2, "TXT string of 256 bytes: at most 255 (split it into several quoted strings)"],
    ["a TXT escape above 255", 'x TXT "\\256"\n', 2, 'bad escape "\\256": at most \\255'],
    ["a TXT string that is not UTF-8", 'x TXT "\\255"\n', 2, 'TXT string "\\255" is not valid UTF-8'],
    ["a bad CAA tag", 'x CAA 0 is-sue "ca.example"\n', 2, 'bad CAA tag "is-sue": 1 to 15 letters and digits'],
    ["an unclosed parenthesis", "x TXT ( a\nb\n\nc\n", 2, '"(" is never closed'],
    ["a stray parenthesis", "x A 10.0.0.1 )\n", 2, '")" without "("'],
    ["an unterminated string", 'x TXT "abc\n', 2, "unterminated quoted string"],
    ["an empty label", "a..b A 10.0.0.1\n", 2, 'bad name "a..b": empty label'],
    ["a long label", `${"a".repeat(64)} A 10.0.0.1\n`, 2, `bad name "${"a".repeat(64)}": label "${"a".repeat(64)}" is longer than 63 bytes`],
    ["a label with a dot in it", "a\\.b A 10.0.0.1\n", 2, 'bad name "a\\.b": labels may hold only printable ASCII other than "."'],
    ["a quoted name", 'x CNAME "y"\n', 2, 'a domain name cannot be quoted: "y"'],
    ["a wildcard inside a name", "a.*.b A 10.0.0.1\n", 2, '"a.*.b.t.example": "*" is a wildcard only as the leftmost label'],
    ["a record outside the zone", "x.other. A 10.0.0.1\n", 2, '"x.other" is outside zone t.example'],
    ["a CNAME beside other data", "x A 10.0.0.1\nx CNAME y\n", 3, 'CNAME at "x.t.example" beside other data (A at line 2): a CNAME must be alone at its name'],
    ["data beside a CNAME", "x CNAME y\n  TXT \"hi\"\n", 3, 'TXT record at "x.t.example" beside its CNAME (line 2): a CNAME must be alone at its name'],
    ["a CNAME at the apex", "@ CNAME y\n", 2, 'CNAME at "t.example" beside other data (SOA at line 1): a CNAME must be alone at its name'],
    ["two CNAMEs", "x CNAME y\nx CNAME z\n", 3, 'a second CNAME at "x.t.example" (the first is at line 2)'],
    ["a CNAME loop", "a CNAME b\nb CNAME c\nc CNAME a\n", 2, "CNAME loop: a.t.example -> b.t.example -> c.t.example -> a.t.example"],
    ["a second SOA", "@ SOA ns1 hostmaster 2 1 1 1 1\n", 2, "a second SOA record (the first is at line 1 of"],
    ["a delegation", "sub NS ns1.sub\n", 2, 'NS record at "sub.t.example": delegations below the zone apex are not supported'],
    ["no owner on the first record", " A 10.0.0.1\n" + SOA, 1, "no owner name: the first record must name its owner"],
    ["$GENERATE", "$GENERATE 1-10 host$ A 10.0.0.$\n", 2, "$GENERATE is not supported: write the records out"],
    ["an unknown directive", "$FOO bar\n", 2, "unknown directive $FOO"],
    ["a bad $ORIGIN", "$ORIGIN\n", 2, "$ORIGIN takes one domain name"],
    ["a missing $INCLUDE file", "\n$INCLUDE nope.inc\n", 3, 'cannot read $INCLUDE file "'],
  ];

  for (const [what, body, line, message] of cases) {
    it(`refuses ${what}`, async () => {
      const soa = !body.includes(SOA);
      const { file, load } = await loadOne(body, { soa });
      const err = await loadError(load);
      expect(err.message.startsWith(`${file}:${line}: ${message}`), `${err.message}\n  wanted: ${file}:${line}: ${message}`).toBe(true);
      expect(err).toMatchObject({ file, line, kind: "invalid", name: "ZoneError" });
    });
  }

  it("names the exact message of the brief's example", async () => {
    const dir = await dirWith({ "home.arpa.zone": `${SOA}\n\n\n\n\n\n\n\n\n\nprinter A 10.0.0.300\n` });
    const err = await loadError(() => loadZones([dir]));
    expect(err.message).toBe(`${join(dir, "home.arpa.zone")}:12: bad IPv4 address "10.0.0.300" in A record`);
  });

  it("names the line inside a multi-line record", async () => {
    const { file, load } = await loadOne("@ SOA ns1 hostmaster (\n 1 ; serial\n 3600\n later\n 1 1 )\n", { soa: false });
    const err = await loadError(load);
    expect(err.message).toBe(`${file}:4: bad retry "later": seconds, or a duration such as 1h30m`);
  });

  it("refuses a file with no SOA, hinting at $INCLUDE files", async () => {
    const { file, load } = await loadOne("\n; only hosts\nx A 10.0.0.1\n", { soa: false });
    const err = await loadError(load);
    expect(err.message).toBe(`${file}:3: no SOA record: a zone file needs its zone's SOA (files meant for $INCLUDE must not end in .zone)`);
  });

  it("refuses a file whose origin cannot be determined", async () => {
    const { file, load } = await loadOne("@ SOA ns1 hostmaster 1 1 1 1 1\n", { soa: false, name: "my zone.zone" });
    expect((await loadError(load)).message).toBe(`${file}:1: relative name "@" but no origin: add $ORIGIN, or name the file <zone>.zone`);
    // with $ORIGIN the same file loads
    const ok = await loadOne("$ORIGIN lab.example.\n@ SOA ns1 hostmaster 1 1 1 1 1\n", { soa: false, name: "my zone.zone" });
    expect((await ok.load()).zones[0]!.origin).toBe("lab.example");
  });

  it("names the included file and its line for an error inside it", async () => {
    const dir = await dirWith({ "t.example.zone": `${SOA}$INCLUDE hosts.inc\n`, "hosts.inc": "ok A 10.0.0.1\nbad A 300.0.0.1\n" });
    const err = await loadError(() => loadZones([dir]));
    expect(err.message).toBe(`${join(dir, "hosts.inc")}:2: bad IPv4 address "300.0.0.1" in A record`);
  });

  it("refuses an $INCLUDE loop", async () => {
    const dir = await dirWith({ "t.example.zone": `${SOA}$INCLUDE a.inc\n`, "a.inc": "$INCLUDE b.inc\n", "b.inc": "\n$INCLUDE a.inc\n" });
    const err = await loadError(() => loadZones([dir]));
    expect(err.message).toBe(
      `${join(dir, "b.inc")}:2: $INCLUDE loop: ${join(dir, "t.example.zone")} includes ${join(dir, "a.inc")} includes ${join(dir, "b.inc")} includes ${join(dir, "a.inc")}`,
    );
  });

  it("refuses the same zone in two files", async () => {
    const dir = await dirWith({ "a.zone": `$ORIGIN t.example.\n${SOA}`, "t.example.zone": SOA });
    const err = await loadError(() => loadZones([dir]));
    expect(err.message).toBe(`${join(dir, "t.example.zone")}:1: zone t.example is already defined by ${join(dir, "a.zone")}`);
  });

  it("refuses names that another file's more specific zone owns", async () => {
    const dir = await dirWith({ "example.zone": `${SOA}\nwww.lab A 10.0.0.1\n`, "lab.example.zone": SOA });
    const err = await loadError(() => loadZones([dir]));
    expect(err.message).toBe(`${join(dir, "example.zone")}:3: "www.lab.example" lies in zone lab.example (${join(dir, "lab.example.zone")}): define it there`);
  });

  it("reports an unreadable directory", async () => {
    const { file } = await loadOne("");
    const err = await loadError(() => loadZones([file]));
    expect(err.message).toBe(`${file}: cannot read the zones directory: ENOTDIR`);
  });
});

describe("names the registry answers", () => {
  const opts = { name: "home.arpa.zone", domain: "home.arpa", cluster: "homelab" };
  for (const [owner, under] of [
    ["web.service", "service.home.arpa"],
    ["service", "service.home.arpa"],
    ["nas.node", "node.home.arpa"],
    ["7f000001.addr", "addr.home.arpa"],
    ["web.service.homelab", "service.homelab.home.arpa"],
    ["nas.node.homelab", "node.homelab.home.arpa"],
  ]) {
    it(`refuses ${owner}.home.arpa in a file`, async () => {
      const { file, load } = await loadOne(`nas A 192.168.1.10\n${owner} A 192.168.1.11\n`, opts);
      expect((await loadError(load)).message).toBe(`${file}:3: "${owner}.home.arpa" is under ${under}, which the registry answers: zone files may not define names there`);
    });
  }

  it("refuses a zone file for the registry's own subtree", async () => {
    const { file, load } = await loadOne("", { ...opts, name: "service.home.arpa.zone" });
    expect((await loadError(load)).message).toBe(`${file}:1: "service.home.arpa" is under service.home.arpa, which the registry answers: zone files may not define names there`);
  });

  it("allows those names when no domain is given, and in other zones", async () => {
    await expect((await loadOne("web.service A 10.0.0.1\n", { name: "home.arpa.zone" })).load()).resolves.toBeDefined();
    await expect((await loadOne("web.service A 10.0.0.1\n", { domain: "home.arpa" })).load()).resolves.toBeDefined();
  });

  it("lets the caller merge a file at the server's domain with the registry", async () => {
    const { load } = await loadOne("nas A 192.168.1.10\nx.y.z TXT hi\n", opts);
    const zone = (await load()).findZone(L("web.service.home.arpa"))!;
    expect(zone.origin).toBe("home.arpa");
    expect(zone.has(L("nas.home.arpa"))).toBe(true);
    expect(zone.has(L("home.arpa"))).toBe(true);
    expect(zone.has(L("y.z.home.arpa"))).toBe(true); // an empty non-terminal of the file
    expect(zone.has(L("web.service.home.arpa"))).toBe(false);
    expect(zone.has(L("service.home.arpa"))).toBe(false);
    expect(zone.has(L("ns.home.arpa"))).toBe(false);
  });
});

describe("lookups", () => {
  let lab: StaticZone;
  const q = (name: string, type: number) => lab.lookup(L(name), type);

  beforeAll(async () => {
    lab = (await loadZones([FIXTURES])).zones[0]!;
  });

  it("answers an existing name and type", () => {
    expect(q("nas.lab.example", TYPE.A)).toEqual({ kind: "success", records: [{ name: "nas.lab.example", type: TYPE.A, class: 1, ttl: 120, address: "10.1.0.10" }] });
    expect(q("lab.example", TYPE.SOA)).toEqual({ kind: "success", records: [lab.soa] });
  });

  it("says NODATA for an existing name without that type", () => {
    expect(q("nas.lab.example", TYPE.MX)).toEqual({ kind: "nodata", records: [] });
    expect(q("ns1.lab.example", TYPE.AAAA)).toEqual({ kind: "nodata", records: [] });
  });

  it("says NXDOMAIN for a name that does not exist", () => {
    expect(q("nope.lab.example", TYPE.A)).toEqual({ kind: "nxdomain", records: [] });
    expect(q("x.nas.lab.example", TYPE.A)).toEqual({ kind: "nxdomain", records: [] });
    expect(q("c.b.deep.lab.example", TYPE.A)).toEqual({ kind: "nxdomain", records: [] });
  });

  it("says NODATA, not NXDOMAIN, for empty non-terminals (RFC 8020)", () => {
    for (const name of ["deep.lab.example", "b.deep.lab.example", "wild.deep.lab.example", "_tcp.lab.example"]) {
      expect(q(name, TYPE.A), name).toEqual({ kind: "nodata", records: [] });
      expect(lab.has(L(name)), name).toBe(true);
    }
  });

  it("is case-insensitive", () => {
    expect(q("NaS.LAB.example", TYPE.A)).toMatchObject({ kind: "success", records: [{ name: "nas.lab.example" }] });
    expect(lab.has(["NAS", "Lab", "Example"])).toBe(true);
    expect(q("WWW.lab.example", TYPE.A)).toMatchObject({ kind: "cname" });
  });

  it("answers a CNAME and follows it inside the zone", () => {
    expect(q("www.lab.example", TYPE.A)).toEqual({
      kind: "cname",
      end: "success",
      records: [
        { name: "www.lab.example", type: TYPE.CNAME, class: 1, ttl: 300, domain: "nas.lab.example" },
        { name: "nas.lab.example", type: TYPE.A, class: 1, ttl: 120, address: "10.1.0.10" },
      ],
    });
    const chain = q("alias.lab.example", TYPE.AAAA);
    expect(chain).toMatchObject({ kind: "cname", end: "success" });
    expect(chain.records.map((r) => [r.name, r.type])).toEqual([
      ["alias.lab.example", TYPE.CNAME],
      ["www.lab.example", TYPE.CNAME],
      ["nas.lab.example", TYPE.AAAA],
    ]);
  });

  it("says how a CNAME chain ends: NODATA, NXDOMAIN, or outside the zone", () => {
    expect(q("www.lab.example", TYPE.MX)).toMatchObject({ kind: "cname", end: "nodata", records: [{ type: TYPE.CNAME }] });
    expect(q("dangling.lab.example", TYPE.A)).toMatchObject({ kind: "cname", end: "nxdomain", records: [{ domain: "nope.lab.example" }] });
    expect(q("far.lab.example", TYPE.A)).toMatchObject({ kind: "cname", end: "outside", records: [{ domain: "elsewhere.example" }] });
  });

  it("answers the CNAME itself for CNAME and ANY questions", () => {
    expect(q("www.lab.example", TYPE.CNAME)).toEqual({ kind: "success", records: [{ name: "www.lab.example", type: TYPE.CNAME, class: 1, ttl: 300, domain: "nas.lab.example" }] });
    expect(q("www.lab.example", TYPE.ANY)).toMatchObject({ kind: "success", records: [{ type: TYPE.CNAME }] });
    expect(q("nas.lab.example", TYPE.CNAME)).toEqual({ kind: "nodata", records: [] });
  });

  it("answers ANY with one RRset (RFC 8482): addresses first, else the first written", () => {
    expect(q("nas.lab.example", TYPE.ANY)).toMatchObject({ kind: "success", records: [{ type: TYPE.A }] });
    expect(q("lab.example", TYPE.ANY)).toEqual({ kind: "success", records: [lab.soa] });
    expect(q("txt.lab.example", TYPE.ANY)).toMatchObject({ kind: "success", records: [{ type: TYPE.TXT }] });
    expect(q("deep.lab.example", TYPE.ANY)).toEqual({ kind: "nodata", records: [] });
  });

  it("synthesises answers from wildcards (RFC 4592), but not for names that exist", () => {
    expect(q("host.wild.deep.lab.example", TYPE.A)).toEqual({
      kind: "success",
      records: [{ name: "host.wild.deep.lab.example", type: TYPE.A, class: 1, ttl: 300, address: "10.1.0.30" }],
    });
    expect(q("a.b.wild.deep.lab.example", TYPE.TXT)).toMatchObject({ kind: "success", records: [{ name: "a.b.wild.deep.lab.example", data: ["synthesised"] }] });
    expect(q("host.wild.deep.lab.example", TYPE.MX)).toEqual({ kind: "nodata", records: [] });
    expect(lab.has(L("host.wild.deep.lab.example"))).toBe(false);
    // the wildcard's closest encloser is wild.deep; under b.deep (another existing name) it does not apply
    expect(q("x.b.deep.lab.example", TYPE.A)).toEqual({ kind: "nxdomain", records: [] });
    expect(q("wild.deep.lab.example", TYPE.A)).toEqual({ kind: "nodata", records: [] });
  });

  it("follows a CNAME to a wildcard and stops a loop through one", async () => {
    const { load } = await loadOne("*.w CNAME x.w\nc CNAME foo.w\n*.v A 10.0.0.9\nd CNAME e.v\n");
    const z = (await load()).zones[0]!;
    expect(z.lookup(L("d.t.example"), TYPE.A)).toMatchObject({ kind: "cname", end: "success", records: [{ type: TYPE.CNAME }, { name: "e.v.t.example", address: "10.0.0.9" }] });
    const looped = z.lookup(L("c.t.example"), TYPE.A);
    expect(looped.kind).toBe("cname");
    expect(looped.records.length).toBeLessThanOrEqual(10);
  });

  it("hands out records the caller cannot change by accident", () => {
    const r = q("nas.lab.example", TYPE.A).records;
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r[0])).toBe(true);
  });
});

describe("the sample zone", () => {
  it("is not served until it is copied to a .zone file", async () => {
    const zones = await loadZones([join(import.meta.dirname, "..", "..", "zones")], { domain: "home.arpa", cluster: "homelab" });
    expect(zones.zones).toEqual([]);
  });

  it("loads cleanly with the server's reserved names once copied", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hd-sample-"));
    await copyFile(join(import.meta.dirname, "..", "..", "zones", "home.arpa.zone.example"), join(dir, "home.arpa.zone"));
    const zones = await loadZones([dir], { domain: "home.arpa", cluster: "homelab" });
    await rm(dir, { recursive: true });
    expect(zones.zones.map((z) => z.origin)).toEqual(["home.arpa"]);
    const z = zones.zones[0]!;
    expect(z.lookup(L("nas.home.arpa"), TYPE.A)).toMatchObject({ kind: "success", records: [{ address: "192.168.1.10" }] });
    expect(z.lookup(L("files.home.arpa"), TYPE.AAAA)).toMatchObject({ kind: "cname", end: "success", records: [{ domain: "nas.home.arpa" }, { address: "fd12:3456:789a:1::10" }] });
    expect(z.lookup(L("_ipp._tcp.home.arpa"), TYPE.SRV)).toMatchObject({ kind: "success", records: [{ port: 631, target: "printer.home.arpa" }] });
    expect(z.lookup(L("printer.home.arpa"), TYPE.TXT)).toMatchObject({ kind: "success", records: [{ data: ["ty=Office Laser", 'note="upstairs"'] }] });
    expect(z.has(L("web.service.home.arpa"))).toBe(false);
    // only private addresses
    for (const name of ["router", "nas", "printer"]) {
      const [a] = z.lookup(L(`${name}.home.arpa`), TYPE.A).records as readonly { address: string }[];
      expect(a!.address).toMatch(/^192\.168\./);
      const [aaaa] = z.lookup(L(`${name}.home.arpa`), TYPE.AAAA).records as readonly { address: string }[];
      expect(aaaa!.address).toMatch(/^fd/);
    }
  });
});

describe("records encode with dns2", () => {
  const { Packet } = dns2;

  function roundTrip(rr: ZoneRr): Record<string, unknown> {
    const p = new Packet();
    p.header.qr = 1;
    p.questions.push(new Packet.Question(rr.name, rr.type, 1));
    p.answers.push(rr as never);
    const parsed = Packet.parse(p.toBuffer());
    expect(parsed.errors).toEqual([]);
    expect(parsed.answers).toHaveLength(1);
    return { ...parsed.answers[0]! } as Record<string, unknown>;
  }

  it("round-trips every record type the loader emits", async () => {
    const lab = (await loadZones([FIXTURES])).zones[0]!;
    const one = (name: string, type: number) => lab.lookup(L(name), type).records[0]!;
    const samples: [ZoneRr, Record<string, unknown>][] = [
      [one("nas.lab.example", TYPE.A), { address: "10.1.0.10" }],
      [one("nas.lab.example", TYPE.AAAA), { address: "fd00::10" }],
      [one("www.lab.example", TYPE.CNAME), { domain: "nas.lab.example" }],
      [one("lab.example", TYPE.NS), { ns: "ns1.lab.example" }],
      [one("lab.example", TYPE.MX), { priority: 10, exchange: "mail.lab.example" }],
      [one("txt.lab.example", TYPE.TXT), { data: ['a "quoted" string; not a comment', "plain", "ABC", "café", "on a", "second line"] }],
      [one("_http._tcp.lab.example", TYPE.SRV), { priority: 10, weight: 5, port: 80, target: "www.lab.example" }],
      [one("10.lab.example", TYPE.PTR), { domain: "nas.lab.example" }],
      [lab.soa, { primary: "ns1.lab.example", admin: "hostmaster.lab.example", serial: 7, refresh: 3600, retry: 600, expiration: 604800, minimum: 60 }],
      [one("lab.example", TYPE_CAA), { flags: 0, tag: "issue", value: "letsencrypt.org" }],
    ];
    expect(new Set(samples.map(([rr]) => rr.type)).size).toBe(10);
    for (const [rr, fields] of samples) {
      expect(roundTrip(rr), `type ${rr.type}`).toMatchObject({ name: rr.name, type: rr.type, class: 1, ttl: rr.ttl, ...fields });
    }
  });

  it("encodes IPv4-mapped IPv6 addresses correctly (kept in hex: dns2 reads only hex groups)", async () => {
    const { load } = await loadOne("m AAAA ::ffff:192.0.2.1\n");
    const rr = (await load()).zones[0]!.lookup(L("m.t.example"), TYPE.AAAA).records[0]!;
    expect(rr).toMatchObject({ address: "::ffff:c000:201" });
    expect(roundTrip(rr)).toMatchObject({ address: "::ffff:c000:201" });
  });
});
