// The API's TLS material (--tls-cert, --tls-key, --tls-client-ca): read from files, checked before it is used (a
// key that is not the certificate's, a file that holds no certificate), and described for the log, /v1/status and
// /metrics. Reading it again (SIGHUP) gives a new material the listener switches to for new connections; one that
// does not load leaves the one in use.
import { readFileSync } from "node:fs";
import { createSecureContext, rootCertificates, type SecureContextOptions } from "node:tls";
import type { PeerTls } from "./forward.js";
import { X509Certificate } from "node:crypto";

export interface TlsFiles {
  /** PEM: the server's certificate, followed by its intermediates. */
  cert: string;
  /** PEM: its private key. */
  key: string;
  /** PEM: the CA(s) a client certificate must chain to; clients without one are refused. */
  clientCa?: string | undefined;
}

/** What the log, /v1/status and /metrics say about the certificate in use. */
export interface TlsStatus {
  subject: string;
  issuer: string;
  /** The names it is valid for (subjectAltName), as the certificate lists them. */
  names: string[];
  notBefore: string;
  notAfter: string;
  /** SHA-256 fingerprint, as openssl x509 -fingerprint -sha256 prints it. */
  fingerprint: string;
  clientCertificates: "required" | "off";
  loadedAt: string;
}

export interface TlsMaterial {
  readonly options: SecureContextOptions;
  readonly requireClientCert: boolean;
  /**
   * How this node reaches another node's https:// API when it forwards a write there: trusting the system's CAs
   * and, with a client CA (the cluster's own, as Consul's ca_file), that CA too, showing this node's certificate
   * (the other node asks for one). One object per material: the forwarder keeps its connections while it is the same.
   */
  readonly peer: PeerTls;
  readonly status: TlsStatus;
}

export class TlsError extends Error {}

/** Reads and checks the files; throws a TlsError naming the file and what is wrong with it. */
export function loadTls(files: TlsFiles, now: Date = new Date()): TlsMaterial {
  const cert = read(files.cert, "--tls-cert");
  const key = read(files.key, "--tls-key");
  const ca = files.clientCa === undefined ? undefined : read(files.clientCa, "--tls-client-ca");
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new TlsError(`--tls-cert: ${files.cert} holds no PEM certificate (${(err as Error).message})`);
  }
  if (ca !== undefined) {
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw new TlsError(`--tls-client-ca: ${files.clientCa} holds no PEM certificate (${(err as Error).message})`);
    }
  }
  const options: SecureContextOptions = { cert, key, ...(ca !== undefined ? { ca } : {}) };
  try {
    // What the listener will do with them: OpenSSL refuses a key that is not the certificate's here, not later.
    createSecureContext(options);
  } catch (err) {
    const message = (err as Error).message;
    const why = /key values mismatch/i.test(message) ? `the key in ${files.key} is not the key of the certificate in ${files.cert}` : message;
    throw new TlsError(`--tls-cert/--tls-key: ${why}`);
  }
  return {
    options,
    requireClientCert: ca !== undefined,
    peer: ca !== undefined ? { ca: [...rootCertificates, ca], cert, key } : {},
    status: {
      subject: leaf.subject.replace(/\n/g, ", "),
      issuer: leaf.issuer.replace(/\n/g, ", "),
      names: (leaf.subjectAltName ?? "").split(", ").filter((n) => n !== ""),
      notBefore: new Date(leaf.validFrom).toISOString(),
      notAfter: new Date(leaf.validTo).toISOString(),
      fingerprint: leaf.fingerprint256,
      clientCertificates: ca !== undefined ? "required" : "off",
      loadedAt: now.toISOString(),
    },
  };
}

/** Days a certificate has left from `now` (negative once expired). */
export function daysLeft(status: TlsStatus, now: Date = new Date()): number {
  return (Date.parse(status.notAfter) - now.getTime()) / 86_400_000;
}

function read(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsError(`${flag}: cannot read ${path}: ${(err as Error).message}`);
  }
}
