// IP address text, once: strict parsing of dotted quads and IPv6 text (RFC 4291 section 2.2) into words, and the
// texts made from them: RFC 5952's canonical form, the all-hex form dns2's AAAA encoder reads, DNS names' hex; and
// lists of addresses and CIDR blocks (node:net's BlockList). A leaf.

import { BlockList, isIP } from "node:net";

const OCTET = /^(0|[1-9]\d{0,2})$/;
const HEX_WORD = /^[0-9a-f]{1,4}$/;
/** The dotted quad IPv6 text may end in, after a colon (or alone, which then fails the group count). */
const TRAILING_IPV4 = /(?:^|:)(\d+\.\d+\.\d+\.\d+)$/;

/** A dotted quad: four decimal octets of at most 255, without leading zeros ("1.2.3.4", never "01.2.3.4"). */
export function isIPv4Text(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 && parts.every((p) => OCTET.test(p) && Number(p) <= 255);
}

/**
 * The eight 16-bit words of IPv6 text, or undefined when it is not one: hex groups in any case, "::" at most
 * once, an IPv4 dotted quad as the last 32 bits. Nothing else: no zone index ("fe80::1%eth0"), no brackets.
 */
export function ipv6Words(text: string): number[] | undefined {
  if (!/^[0-9a-f:.]+$/i.test(text)) return undefined;
  let s = text.toLowerCase();
  const v4 = TRAILING_IPV4.exec(s);
  if (v4) {
    if (!isIPv4Text(v4[1]!)) return undefined;
    const b = v4[1]!.split(".").map(Number);
    s = `${s.slice(0, s.length - v4[1]!.length)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (![...head, ...tail].every((g) => HEX_WORD.test(g))) return undefined;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  return [...head, ...Array<string>(fill).fill("0"), ...tail].map((g) => parseInt(g, 16));
}

/** RFC 5952 text of IPv6 text: "2001:db8::1", and an IPv4-mapped address ends in its dotted quad (section 5). */
export function canonicalIPv6(text: string): string | undefined {
  const words = ipv6Words(text);
  if (words === undefined) return undefined;
  if (!isMapped(words)) return compressed(words);
  const [hi, lo] = [words[6]!, words[7]!];
  return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/**
 * RFC 5952 text of IPv6 text, with the last 32 bits in hex even for IPv4-mapped addresses ("::ffff:c000:201"):
 * dns2's AAAA encoder reads only hex groups (it puts ::ffff:192.0.2.1 on the wire as ::ffff:c0).
 */
export function ipv6ForDns2(text: string): string | undefined {
  const words = ipv6Words(text);
  return words === undefined ? undefined : compressed(words);
}

/** An address as hex digits: 8 for a dotted quad ("7f000001"), 32 for IPv6; undefined when it is neither. */
export function ipHex(text: string): string | undefined {
  if (isIPv4Text(text)) return text.split(".").map((p) => Number(p).toString(16).padStart(2, "0")).join("");
  return ipv6Words(text)?.map((w) => w.toString(16).padStart(4, "0")).join("");
}

/** ::ffff:0:0/96 (RFC 4291 section 2.5.5.2). */
function isMapped(words: readonly number[]): boolean {
  return words[5] === 0xffff && words.slice(0, 5).every((w) => w === 0);
}

/** Lowercase words without leading zeros, the longest run of two or more zero words (the first on a tie) as "::". */
function compressed(words: readonly number[]): string {
  const hex = words.map((w) => w.toString(16));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j += 1;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** A BlockList of addresses and CIDR blocks ("192.168.1.20", "192.168.1.0/24", "fd00::/8"); items that are not
 * IP literals (host names) are left to the caller. */
export function blockListOf(items: readonly string[]): BlockList {
  const list = new BlockList();
  for (const item of items) {
    const [host = "", bits] = item.split("/");
    const family = isIP(host);
    if (family === 0) continue;
    const type = family === 6 ? "ipv6" : "ipv4";
    if (bits === undefined) list.addAddress(host, type);
    else list.addSubnet(host, Number(bits), type);
  }
  return list;
}

/**
 * The network an address belongs to, as a key: its /24 for IPv4 (an IPv4-mapped IPv6 address too), its /56 for
 * IPv6; the text itself when it is neither. What a response rate limit counts per.
 */
export function networkKey(address: string): string {
  if (isIPv4Text(address)) return address.slice(0, address.lastIndexOf("."));
  const words = ipv6Words(address);
  if (words === undefined) return address;
  if (isMapped(words)) return `${words[6]! >> 8}.${words[6]! & 255}.${words[7]! >> 8}`;
  return `${words.slice(0, 3).map((w) => w.toString(16)).join(":")}:${(words[3]! >> 8).toString(16)}/56`;
}

