import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, helpText, loadConfig, SETTINGS, envName, type Config, type SettingKey } from "../../src/app/config.js";

function serve(argv: string[], env: Record<string, string> = {}): Config {
  const cmd = loadConfig(argv, env);
  if (cmd.kind !== "serve") throw new Error(`expected serve, got ${cmd.kind}`);
  return cmd.config;
}
function error(argv: string[], env: Record<string, string> = {}): string {
  try {
    loadConfig(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
}
function configFile(data: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), "hd-config-")), "config.json");
  writeFileSync(path, typeof data === "string" ? data : JSON.stringify(data));
  return path;
}

describe("configuration", () => {
  it("is documented: every setting has its row in the README's table (flag, variable, file key)", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const rows = readme.split("\n").filter((line) => line.startsWith("| `--"));
    for (const key of Object.keys(SETTINGS) as SettingKey[]) {
      const row = rows.find((r) => r.includes(`\`--${SETTINGS[key].flag}\``));
      expect(row, `README row for --${SETTINGS[key].flag}`).toBeDefined();
      expect(row).toContain(`\`${envName(key)}\``);
      expect(row).toContain(`\`${key}\``);
    }
  });

  it("says what a value should be: a number, a boolean in any case; -h and -v as short forms", () => {
    expect(error(["--dns-ttl", "abc"])).toContain("--dns-ttl: must be a number");
    expect(error([], { HD_IN_MEMORY: "maybe" })).toContain("must be true, false, 1, 0, yes or no (any case)");
    expect(serve([], { HD_IN_MEMORY: "TRUE" }).inMemory).toBe(true);
    expect(serve([], { HD_DNS_INCLUDE_DEGRADED: "No" }).dnsIncludeDegraded).toBe(false);
    expect(loadConfig(["-h"], {}).kind).toBe("help");
    expect(loadConfig(["-v"], {}).kind).toBe("version");
  });

  it("names an unknown flag in its own words (no positional arguments to suggest), with the one it was probably meant to be", () => {
    expect(error(["--foo"])).toBe("unknown option --foo; see --help");
    expect(error(["--httplisten", "1"])).toBe("unknown option --httplisten (did you mean --http-listen?); see --help");
    expect(error(["--dns-ttl"])).toContain("--dns-ttl <value>' argument missing");
  });

  it("warns about HD_ variables that name no setting, with the one it was probably meant to be", () => {
    const cmd = loadConfig([], { HD_ADMINTOKEN: "s3cret", HD_BOGUS: "1", HD_URL: "http://127.0.0.1:8500", HD_DNS_TTL: "7" });
    expect(cmd.kind === "serve" && cmd.warnings).toEqual([
      "HD_ADMINTOKEN is not a setting and is ignored: did you mean HD_ADMIN_TOKEN?",
      "HD_BOGUS is not a setting and is ignored (see --help)",
    ]);
  });

  it("has loopback defaults on the Consul ports", () => {
    const c = serve([]);
    expect(c.httpListen).toEqual({ host: "127.0.0.1", port: 8500 });
    expect(c.dnsListen).toEqual({ host: "127.0.0.1", port: 8600 });
    expect(c).toMatchObject({ domain: "home.arpa", clusterName: "homelab", inMemory: false, cacheTtl: 60_000, logLevel: "info" });
    expect(c.adminToken).toBeUndefined();
    expect(c.nodeId).toMatch(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/);
  });

  it("takes flags over environment over file over defaults", () => {
    const file = configFile({ domain: "file.example", cacheTtl: 1000, clusterName: "from-file", nodeId: "file-node" });
    const env = { HD_CONFIG: file, HD_DOMAIN: "env.example", HD_CACHE_TTL: "2000" };
    const c = serve(["--cache-ttl", "3000"], env);
    expect(c.cacheTtl).toBe(3000);
    expect(c.domain).toBe("env.example");
    expect(c.clusterName).toBe("from-file");
    expect(c.nodeId).toBe("file-node");
    expect(serve([`--config=${file}`]).domain).toBe("file.example");
  });

  it("parses listen addresses, booleans and IPv6", () => {
    const c = serve(["serve", "--http-listen", "[::1]:9000", "--in-memory", "--dns-listen=0.0.0.0:53"], { HD_LOG_LEVEL: "debug" });
    expect(c.httpListen).toEqual({ host: "::1", port: 9000 });
    expect(c.dnsListen).toEqual({ host: "0.0.0.0", port: 53 });
    expect(c.inMemory).toBe(true);
    expect(c.logLevel).toBe("debug");
    expect(serve([], { HD_IN_MEMORY: "true" }).inMemory).toBe(true);
    expect(serve([], { HD_IN_MEMORY: "0" }).inMemory).toBe(false);
  });

  it("names the setting and where the bad value came from", () => {
    expect(error(["--http-listen", "8500"])).toContain("--http-listen (HD_HTTP_LISTEN, \"httpListen\" in the config file) from --http-listen: must be host:port");
    expect(error([], { HD_CACHE_TTL: "soon" })).toContain("--cache-ttl (HD_CACHE_TTL, \"cacheTtl\" in the config file) from HD_CACHE_TTL");
    expect(error([], { HD_CONFIG: configFile({ nodeId: "Not A Label" }) })).toMatch(/--node-id .* from .*config\.json: nodeId/);
    expect(error(["--log-level", "loud"])).toContain("--log-level");
    expect(error(["--admin-token", "short"])).toContain("at least 8 characters");
    expect(error(["--nope"])).toContain("unknown option --nope; see --help");
    expect(error(["frobnicate"])).toContain('unknown command "frobnicate"');
    expect(error([], { HD_CONFIG: configFile({ domian: "x" }) })).toContain('unknown setting "domian"');
    expect(error([], { HD_CONFIG: configFile("{oops") })).toContain("is not valid JSON");
    expect(error(["--config", "/nonexistent/config.json"])).toContain("cannot read config file /nonexistent/config.json");
  });

  it("documents every setting, its variable and its default in --help", () => {
    expect(loadConfig(["--help"], {}).kind).toBe("help");
    const help = helpText();
    for (const key of Object.keys(SETTINGS) as (keyof typeof SETTINGS)[]) {
      expect(help).toContain(`--${SETTINGS[key].flag}`);
      expect(help).toContain(envName(key));
    }
    expect(help).toContain("default: 127.0.0.1:8500");
  });
});

describe("upstream resolvers", () => {
  it("takes host[:port] lists, port 53 by default", () => {
    expect(serve(["--dns-upstream", "127.0.0.1:5353, 10.0.0.1,[::1]:53,::1"]).dnsUpstream).toEqual([
      { host: "127.0.0.1", port: 5353 },
      { host: "10.0.0.1", port: 53 },
      { host: "::1", port: 53 },
      { host: "::1", port: 53 },
    ]);
    expect(serve([]).dnsUpstream).toBeUndefined();
    expect(error(["--dns-upstream", "1.2.3.4:99999"])).toContain("--dns-upstream");
  });
});

describe("cluster settings", () => {
  it("takes etcd endpoints and cluster settings, and refuses incomplete ones", () => {
    const c = serve(["--store", "etcd", "--etcd-endpoints", "http://127.0.0.1:2379/, https://etcd.lan:2379", "--etcd-lease-ttl", "3"]);
    expect(c).toMatchObject({ store: "etcd", etcdEndpoints: ["http://127.0.0.1:2379", "https://etcd.lan:2379"], etcdLeaseTtl: 3, etcdCallTimeout: 500, etcdPrefix: "/homelab-discovery" });
    expect(serve([]).store).toBe("embedded");
    expect(error(["--store", "etcd"])).toContain("--store etcd needs --etcd-endpoints");
    expect(error(["--etcd-endpoints", "127.0.0.1:2379"])).toContain("must be http(s)://host:port URLs");
    // One line for a bad value, not a second one saying the setting is missing.
    expect(error(["--store", "etcd", "--etcd-endpoints", "127.0.0.1:2379"])).not.toContain("needs --etcd-endpoints");
    expect(error(["--etcd-lease-ttl", "1"])).toContain("must be at least 2 s");
    expect(error(["--etcd-username", "root"])).toContain("--etcd-username (HD_ETCD_USERNAME");
    expect(error(["--etcd-cert", "c.pem"])).toContain("--etcd-key go together");
    expect(error(["--etcd-prefix", "/x/"])).toContain("must start with / and not end with /");
    expect(error(["--advertise-url", "http://h:1/path"])).toContain("--advertise-url");
  });
});

describe("tokens", () => {
  const tokenFile = (text: string, mode = 0o600) => {
    const path = join(mkdtempSync(join(tmpdir(), "hd-token-")), "token");
    writeFileSync(path, text, { mode });
    chmodSync(path, mode);
    return path;
  };
  const warnings = (argv: string[]) => {
    const cmd = loadConfig(argv, {});
    if (cmd.kind !== "serve") throw new Error("expected serve");
    return cmd.warnings;
  };

  it("reads each token from its file, trimmed, with no warning for a file only its owner reads", () => {
    const c = serve(["--admin-token-file", tokenFile("  admin-secret-1\n"), "--write-token-file", tokenFile("write-secret-1\n"), "--read-token-file", tokenFile("read-secret-1")]);
    expect([c.adminToken, c.writeToken, c.readToken]).toEqual(["admin-secret-1", "write-secret-1", "read-secret-1"]);
    expect(warnings(["--admin-token-file", tokenFile("admin-secret-1", 0o400)])).toEqual([]);
    expect(serve([], { HD_ADMIN_TOKEN_FILE: tokenFile("from-the-env-1") }).adminToken).toBe("from-the-env-1");
  });

  it("refuses an empty, missing or short token file, and a token given both ways", () => {
    expect(error(["--admin-token-file", tokenFile(" \n")])).toMatch(/--admin-token-file .*: .* is empty/);
    expect(error(["--admin-token-file", "/nonexistent/token"])).toContain("cannot read /nonexistent/token");
    expect(error(["--admin-token-file", tokenFile("short")])).toContain("at least 8 characters");
    expect(error(["--admin-token", "admin-secret-1", "--admin-token-file", tokenFile("admin-secret-2")])).toContain("are both set: give the token one way");
  });

  it("warns about a token file others can read (Docker's secrets are 0444, so it is not refused)", () => {
    const path = tokenFile("admin-secret-1", 0o644);
    expect(warnings(["--admin-token-file", path])).toEqual([expect.stringContaining(`${path} (--admin-token-file`)]);
    expect(warnings(["--admin-token-file", path])[0]).toContain("mode 644");
  });

  it("takes scoped tokens only beside an admin token, and no two the same", () => {
    expect(error(["--read-token", "read-secret-1"])).toContain("--read-token (HD_READ_TOKEN");
    expect(error(["--write-token", "write-secret-1"])).toContain("needs --admin-token");
    expect(error(["--admin-token", "same-secret-1", "--read-token", "same-secret-1"])).toContain("--admin-token and --read-token are the same token");
    expect(error(["--admin-token", "has a space 1"])).toContain("must not contain white space");
    const c = serve(["--admin-token", "admin-secret-1", "--read-token", "read-secret-1", "--metrics-open"]);
    expect(c.readToken).toBe("read-secret-1");
    expect(c.writeToken).toBeUndefined();
    expect(c.metricsOpen).toBe(true);
  });

  it("takes TLS files for the API in pairs: a certificate with its key, a client CA only beside them", () => {
    expect(serve(["--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-client-ca", "ca.pem"])).toMatchObject({ tlsCert: "c.pem", tlsKey: "k.pem", tlsClientCa: "ca.pem" });
    expect(serve([]).tlsCert).toBeUndefined();
    expect(error(["--tls-cert", "c.pem"])).toContain('--tls-cert (HD_TLS_CERT, "tlsCert" in the config file) and --tls-key go together');
    expect(error(["--tls-key", "k.pem"])).toContain("and --tls-key go together");
    expect(error(["--tls-client-ca", "ca.pem"])).toContain("needs --tls-cert and --tls-key");
  });
});
