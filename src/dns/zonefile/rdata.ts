// Record data: one record's fields from its tokens (RFC 1035 section 5.1 and each type's RFC): names, TTLs,
// numbers, character-strings and addresses, each mistake a ZoneError naming the line.
import { ipv6ForDns2, isIPv4Text } from "../../lib/ip.js";
import { TYPE_CAA, type ZoneRr } from "../records.js";
import { TYPE } from "../wire.js";
import { ZoneError, type Token } from "./tokens.js";

const MAX_TTL = 0x7fffffff;

/** The types a zone file may hold, by name. */
export const TYPES: Readonly<Record<string, number>> = {
  A: TYPE.A,
  AAAA: TYPE.AAAA,
  CNAME: TYPE.CNAME,
  NS: TYPE.NS,
  MX: TYPE.MX,
  TXT: TYPE.TXT,
  SRV: TYPE.SRV,
  PTR: TYPE.PTR,
  SOA: TYPE.SOA,
  CAA: TYPE_CAA,
};
/** Types a zone file may hold that we do not serve: named so the error says "not supported", not "unknown". */
export const UNSUPPORTED = new Set(["HINFO", "SPF", "SSHFP", "TLSA", "NAPTR", "DS", "DNSKEY", "RRSIG", "NSEC", "NSEC3", "NSEC3PARAM", "DNAME", "LOC", "RP", "SVCB", "HTTPS", "URI", "AFSDB", "CERT", "OPENPGPKEY", "SMIMEA", "ZONEMD", "CDS", "CDNSKEY", "CSYNC", "WKS", "MINFO", "MB", "MG", "MR", "NULL", "KEY", "SIG", "NXT", "A6", "APL", "IPSECKEY", "DHCID", "HIP", "EUI48", "EUI64"]);
/** A TTL field: seconds, or BIND's units (1h30m). */
export const TTL_RE = /^(\d+|(\d+[smhdw])+)$/i;

type Base = { name: string; class: 1; ttl: number };

export function parseRdata(type: number, typeName: string, args: Token[], base: Base, origin: string[] | undefined, file: string, line: number): ZoneRr {
  const fail = (reason: string, at = line) => new ZoneError(file, at, reason);
  const need = (n: number, what: string) => {
    if (args.length < n) throw fail(`${typeName} record needs ${what}`);
    if (args.length > n) throw fail(`unexpected "${args[n]!.text}" after ${typeName} record`, args[n]!.line);
  };
  const name = (t: Token) => parseName(t, origin, file).join(".");
  const u = (t: Token, max: number, what: string) => parseUint(t, max, `${what} in ${typeName} record`, file);
  switch (type) {
    case TYPE.A: {
      need(1, "an IPv4 address");
      const t = args[0]!;
      if (t.quoted || !isIPv4Text(t.text)) throw fail(`bad IPv4 address "${t.text}" in A record`, t.line);
      return { ...base, type: TYPE.A, address: t.text };
    }
    case TYPE.AAAA: {
      need(1, "an IPv6 address");
      const t = args[0]!;
      // In hex even when IPv4-mapped: dns2 reads only hex groups (see ipv6ForDns2).
      const address = t.quoted ? undefined : ipv6ForDns2(t.text);
      if (address === undefined) throw fail(`bad IPv6 address "${t.text}" in AAAA record`, t.line);
      return { ...base, type: TYPE.AAAA, address };
    }
    case TYPE.CNAME:
    case TYPE.PTR: {
      need(1, "a domain name");
      return { ...base, type, domain: name(args[0]!) };
    }
    case TYPE.NS: {
      need(1, "a name server's name");
      const ns = name(args[0]!);
      return { ...base, type: TYPE.NS, domain: ns, ns };
    }
    case TYPE.MX: {
      need(2, "a preference and an exchange");
      return { ...base, type: TYPE.MX, priority: u(args[0]!, 0xffff, "preference"), exchange: name(args[1]!) };
    }
    case TYPE.SRV: {
      need(4, "priority, weight, port and target");
      return {
        ...base,
        type: TYPE.SRV,
        priority: u(args[0]!, 0xffff, "priority"),
        weight: u(args[1]!, 0xffff, "weight"),
        port: u(args[2]!, 0xffff, "port"),
        target: name(args[3]!),
      };
    }
    case TYPE.TXT: {
      if (args.length === 0) throw fail("TXT record needs at least one string");
      return { ...base, type: TYPE.TXT, data: args.map((t) => characterString(t, file, "TXT")) };
    }
    case TYPE.SOA: {
      need(7, "primary, admin, serial, refresh, retry, expire and minimum");
      return {
        ...base,
        type: TYPE.SOA,
        primary: name(args[0]!),
        admin: name(args[1]!),
        serial: u(args[2]!, 0xffffffff, "serial"),
        refresh: parseTtl(args[3]!, file, "refresh"),
        retry: parseTtl(args[4]!, file, "retry"),
        expiration: parseTtl(args[5]!, file, "expire"),
        minimum: parseTtl(args[6]!, file, "minimum"),
      };
    }
    case TYPE_CAA: {
      need(3, "flags, a tag and a value");
      const flags = u(args[0]!, 255, "flags");
      const tag = args[1]!;
      if (tag.quoted || !/^[a-z0-9]{1,15}$/i.test(tag.text)) throw fail(`bad CAA tag "${tag.text}": 1 to 15 letters and digits`, tag.line);
      const value = characterString(args[2]!, file, "CAA", Infinity);
      return { ...base, type: TYPE_CAA, flags, tag: tag.text.toLowerCase(), value };
    }
  }
  throw fail(`record type ${typeName} is not supported`);
}

function parseUint(t: Token, max: number, what: string, file: string): number {
  if (t.quoted || !/^\d+$/.test(t.text) || Number(t.text) > max) throw new ZoneError(file, t.line, `bad ${what} "${t.text}": a number from 0 to ${max}`);
  return Number(t.text);
}

const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Seconds, or BIND's units: 1h30m, 2d, 1w. */
export function parseTtl(t: Token, file: string, what = "TTL"): number {
  let seconds = 0;
  if (!t.quoted && /^\d+$/.test(t.text)) seconds = Number(t.text);
  else if (!t.quoted && TTL_RE.test(t.text)) {
    for (const m of t.text.toLowerCase().matchAll(/(\d+)([smhdw])/g)) seconds += Number(m[1]) * UNIT[m[2]!]!;
  } else throw new ZoneError(file, t.line, `bad ${what} "${t.text}": seconds, or a duration such as 1h30m`);
  if (seconds > MAX_TTL) throw new ZoneError(file, t.line, `${what} "${t.text}" is above the maximum ${MAX_TTL} seconds (RFC 2181)`);
  return seconds;
}

/** A <character-string>: escapes decoded, UTF-8, at most `max` bytes (255 on the wire). */
function characterString(t: Token, file: string, what: string, max = 255): string {
  const bytes = unescape(t, file);
  if (bytes.length > max) throw new ZoneError(file, t.line, `${what} string of ${bytes.length} bytes: at most ${max} (split it into several quoted strings)`);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ZoneError(file, t.line, `${what} string "${t.text}" is not valid UTF-8`);
  }
}

/** Decodes \X and \DDD (RFC 1035 section 5.1) into bytes. */
function unescape(t: Token, file: string): Buffer {
  const out: number[] = [];
  const text = t.text;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== "\\") {
      for (const b of Buffer.from(c, "utf8")) out.push(b);
      continue;
    }
    const digits = /^\d{3}/.exec(text.slice(i + 1, i + 4));
    if (digits) {
      const v = Number(digits[0]);
      if (v > 255) throw new ZoneError(file, t.line, `bad escape "\\${digits[0]}": at most \\255`);
      out.push(v);
      i += 3;
    } else if (i + 1 < text.length) {
      for (const b of Buffer.from(text[i + 1]!, "utf8")) out.push(b);
      i += 1;
    } else throw new ZoneError(file, t.line, `"${text}" ends in a lone backslash`);
  }
  return Buffer.from(out);
}

/**
 * A domain name as lowercase labels: "@" is the origin, a final "." makes it absolute, otherwise the origin is
 * appended. Labels must be printable ASCII without ".", the only names a query can carry to us.
 */
export function parseName(t: Token, origin: readonly string[] | undefined, file: string): string[] {
  const fail = (reason: string) => new ZoneError(file, t.line, reason);
  if (t.quoted) throw fail(`a domain name cannot be quoted: "${t.text}"`);
  const text = t.text;
  const relative = (labels: string[]) => {
    if (origin === undefined) throw fail(`relative name "${text}" but no origin: add $ORIGIN, or name the file <zone>.zone`);
    return [...labels, ...origin];
  };
  if (text === "@") return relative([]);
  if (text === ".") return [];
  const labels: string[] = [];
  let label = "";
  let absolute = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\\") {
      const digits = /^\d{3}/.exec(text.slice(i + 1, i + 4));
      if (digits) {
        label += String.fromCharCode(Number(digits[0]));
        i += 3;
      } else {
        label += text[i + 1] ?? "";
        i += 1;
      }
    } else if (c === ".") {
      if (label === "") throw fail(`bad name "${text}": empty label`);
      labels.push(label);
      label = "";
      if (i === text.length - 1) absolute = true;
    } else label += c;
  }
  if (!absolute) {
    if (label === "") throw fail(`bad name "${text}": empty label`);
    labels.push(label);
  }
  for (const l of labels) {
    if (l.length > 63) throw fail(`bad name "${text}": label "${l}" is longer than 63 bytes`);
    if (!/^[\x21-\x2d\x2f-\x7e]+$/.test(l)) throw fail(`bad name "${text}": labels may hold only printable ASCII other than "."`);
  }
  const lower = labels.map((l) => l.toLowerCase());
  const full = absolute ? lower : relative(lower);
  if (full.reduce((n, l) => n + l.length + 1, 1) > 255) throw fail(`bad name "${text}": longer than 255 bytes`);
  return full;
}
