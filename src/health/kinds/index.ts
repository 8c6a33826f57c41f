// The check kinds, by name. A new kind is a file here (its options, its target, its probe) and its line below.
import type { CheckKind } from "../kind.js";
import { dnsKind } from "./dns.js";
import { execKind } from "./exec.js";
import { grpcKind } from "./grpc.js";
import { httpKind } from "./http.js";
import { tcpKind } from "./tcp.js";
import { ttlKind } from "./ttl.js";

export const KINDS: ReadonlyMap<string, CheckKind> = new Map<string, CheckKind>([httpKind, tcpKind, ttlKind, grpcKind, dnsKind, execKind].map((k) => [k.kind, k as unknown as CheckKind]));
