// The command line (issue 23): `homelab-discovery <command>` talks to a running server over its API with the
// DiscoveryClient. Exit codes: 0 ok, 1 the server refused or failed, 2 a usage error, 3 not found, 4 the server
// cannot be reached. node:util.parseArgs does the parsing: a dozen commands with a few flags each need no more.
import { readFile, writeFile } from "node:fs/promises";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { parse as parseYaml } from "yaml";
import { DiscoveryClient } from "../client/index.js";
import { bashCompletion, zshCompletion } from "./completion.js";
import { instanceDetail, instanceRows, json, table, type Instance, type Io, type OutputMode } from "./output.js";

export const EXIT = { ok: 0, server: 1, usage: 2, notFound: 3, unreachable: 4 } as const;

/** The commands this file runs (`serve`, or none, starts the server: main.ts). */
export const CLI_COMMANDS = new Set(["services", "get", "register", "deregister", "maint", "check", "watch", "snapshot", "status", "completion", "help"]);

export const DEFAULT_ADDR = "http://127.0.0.1:8500";

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;
const GLOBAL: Options = {
  addr: { type: "string" },
  token: { type: "string" },
  ca: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  output: { type: "string", short: "o" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
};
const FILTERS: Options = {
  name: { type: "string" },
  tag: { type: "string", multiple: true },
  version: { type: "string" },
  health: { type: "string" },
  node: { type: "string" },
  meta: { type: "string", multiple: true },
};

const GLOBAL_HELP = `Global flags:
  --addr URL        the server's API (env HD_ADDR; default ${DEFAULT_ADDR}; host:port works too)
  --token TOKEN     a read, write or admin token, as the command needs (env HD_TOKEN, or HD_ADMIN_TOKEN;
                    prefer the env: a flag shows in ps)
  --ca FILE         PEM CA that signed the server's certificate, for https:// (env HD_CA_FILE)
  --cert FILE       PEM client certificate, for a server with --tls-client-ca (env HD_CERT_FILE)
  --key FILE        PEM key of --cert (env HD_KEY_FILE)
  -o, --output FMT  table or json (default: table when stdout is a terminal, json otherwise)
  --json            the same as --output json
  -h, --help        this command's help

Exit codes: 0 ok, 1 the server refused or failed (its message on stderr), 2 usage error,
3 not found (get, deregister, maint, check of an unknown id), 4 the server cannot be reached.
`;

interface Command {
  usage: string;
  summary: string;
  options: Options;
  run(ctx: Ctx, args: string[], values: Record<string, unknown>): Promise<number>;
}

interface Ctx {
  client: DiscoveryClient;
  io: Io;
  output: OutputMode;
}

const FILTER_HELP = `  --name NAME       service name
  --tag TAG         a tag the instance carries (repeat for several)
  --version RANGE   an exact version or a semver range (^2.1, ">=1.2 <2")
  --health STATUS   healthy, degraded, unhealthy or unknown
  --node NODE       the node it is registered on
  --meta KEY=VALUE  a metadata pair (repeat for several)`;

function query(values: Record<string, unknown>): Record<string, unknown> {
  const q: Record<string, unknown> = {};
  if (values.name !== undefined) q.name = values.name;
  if (values.version !== undefined) q.version = values.version;
  if (values.health !== undefined) q.healthStatus = values.health;
  if (values.node !== undefined) q.nodeId = values.node;
  const tags = values.tag as string[] | undefined;
  if (tags?.length) q.tags = tags.flatMap((t) => t.split(","));
  const meta = values.meta as string[] | undefined;
  if (meta?.length) q.metadata = pairs(meta, "--meta");
  return q;
}

function pairs(list: readonly string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`${flag} takes KEY=VALUE, not ${JSON.stringify(item)}`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

function one(args: string[], what: string, usage: string): string {
  if (args.length !== 1) throw new UsageError(`expected ${what}: ${usage}`);
  return args[0]!;
}

const COMMANDS: Record<string, Command> = {
  services: {
    usage: "services [filters]",
    summary: "list instances (the filters the API takes)",
    options: FILTERS,
    async run({ client, io, output }, args, values) {
      if (args.length > 0) throw new UsageError(`services takes no arguments (filters are flags): ${args.join(" ")}`);
      const services = (await client.discoverServices(query(values) as never)) as unknown as Instance[];
      io.stdout.write(output === "json" ? json({ count: services.length, services }) : services.length === 0 ? "no instances\n" : instanceRows(services));
      return EXIT.ok;
    },
  },
  get: {
    usage: "get <id>",
    summary: "show one instance",
    options: {},
    async run({ client, io, output }, args) {
      const entry = (await client.getService(one(args, "one instance id", "get <id>"))) as unknown as Instance & Record<string, unknown>;
      io.stdout.write(output === "json" ? json(entry) : instanceDetail(entry));
      return EXIT.ok;
    },
  },
  register: {
    usage: "register (--file FILE | --id ID --name NAME --address ADDR --port PORT [...])",
    summary: "register or replace an instance, from flags or a JSON/YAML file (- for stdin)",
    options: {
      file: { type: "string", short: "f" },
      id: { type: "string" },
      name: { type: "string" },
      version: { type: "string" },
      address: { type: "string" },
      port: { type: "string" },
      node: { type: "string" },
      tag: { type: "string", multiple: true },
      meta: { type: "string", multiple: true },
      "health-endpoint": { type: "string" },
      ttl: { type: "string" },
      "tcp-check": { type: "boolean" },
      force: { type: "boolean" },
    },
    async run({ client, io, output }, args, v) {
      if (args.length > 0) throw new UsageError(`register takes flags, not arguments: ${args.join(" ")}`);
      let service: Record<string, unknown> = {};
      if (v.file !== undefined) {
        const file = v.file as string;
        const text = file === "-" ? await readStdin() : await readFile(file, "utf8").catch((err: Error) => {
          throw new UsageError(`cannot read ${file}: ${err.message}`);
        });
        let parsed: unknown;
        try {
          parsed = parseYaml(text); // YAML is a superset of JSON: one parser reads both
        } catch (err) {
          throw new UsageError(`${file}: not JSON or YAML: ${(err as Error).message}`);
        }
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError(`${file}: must hold one service as an object`);
        service = parsed as Record<string, unknown>;
      }
      const set = (key: string, value: unknown) => {
        if (value !== undefined) service[key] = value;
      };
      set("id", v.id);
      set("name", v.name);
      set("version", v.version);
      set("address", v.address);
      set("nodeId", v.node);
      set("healthEndpoint", v["health-endpoint"]);
      if (v.port !== undefined) {
        if (!/^\d+$/.test(v.port as string)) throw new UsageError(`--port takes a number, not ${JSON.stringify(v.port)}`);
        service.port = Number(v.port);
      }
      if (v.ttl !== undefined) {
        if (!/^\d+$/.test(v.ttl as string)) throw new UsageError(`--ttl takes milliseconds, not ${JSON.stringify(v.ttl)}`);
        service.ttl = Number(v.ttl);
      }
      if (v["tcp-check"]) service.tcpCheck = true;
      if ((v.tag as string[] | undefined)?.length) service.tags = (v.tag as string[]).flatMap((t) => t.split(","));
      if ((v.meta as string[] | undefined)?.length) service.metadata = { ...(service.metadata as object), ...pairs(v.meta as string[], "--meta") };
      for (const key of ["id", "name", "address", "port"]) if (service[key] === undefined) throw new UsageError(`register needs --${key} (or "${key}" in --file)`);
      const entry = (await client.registerService(service as never, { force: v.force === true })) as unknown as Instance & Record<string, unknown>;
      io.stdout.write(output === "json" ? json(entry) : `registered ${entry.id} (${entry.name} at ${entry.address}:${entry.port}, ${entry.healthStatus})\n`);
      return EXIT.ok;
    },
  },
  deregister: {
    usage: "deregister <id> [--force]",
    summary: "remove an instance (--force for one a services file or container declares)",
    options: { force: { type: "boolean" } },
    async run({ client, io, output }, args, v) {
      const entry = (await client.deregisterService(one(args, "one instance id", "deregister <id>"), { force: v.force === true })) as unknown as Instance;
      io.stdout.write(output === "json" ? json(entry) : `deregistered ${entry.id}\n`);
      return EXIT.ok;
    },
  },
  maint: {
    usage: "maint on|off <id> [--reason TEXT]",
    summary: "put an instance in maintenance (hidden from DNS and healthy queries) or take it out",
    options: { reason: { type: "string" } },
    async run({ client, io, output }, args, v) {
      const [mode, id, ...rest] = args;
      if ((mode !== "on" && mode !== "off") || id === undefined || rest.length > 0) throw new UsageError("expected: maint on|off <id> [--reason TEXT]");
      if (mode === "off" && v.reason !== undefined) throw new UsageError("--reason goes with maint on");
      const request = mode === "on" ? { enable: true, ...(v.reason !== undefined ? { reason: v.reason as string } : {}) } : { enable: false };
      const entry = (await client.setMaintenance(id, request)) as unknown as Instance;
      io.stdout.write(output === "json" ? json(entry) : mode === "on" ? `${entry.id}: maintenance on (${entry.maintenance?.reason ?? ""})\n` : `${entry.id}: maintenance off\n`);
      return EXIT.ok;
    },
  },
  check: {
    usage: "check <id>",
    summary: "run an instance's checks now and show the result",
    options: {},
    async run({ client, io, output }, args) {
      const result = await client.healthCheckService(one(args, "one instance id", "check <id>"));
      io.stdout.write(output === "json" ? json(result) : table(["ID", "KIND", "CHECK", "WAS", "NOW", "OUTPUT"], [[result.id, result.kind, result.status, result.previousStatus, result.healthStatus, result.output.split("\n")[0] ?? ""]]));
      return EXIT.ok;
    },
  },
  watch: {
    usage: "watch [filters]",
    summary: "follow changes (the /v1/events stream): one line per change (JSON lines with --json); Ctrl-C ends it",
    options: FILTERS,
    async run({ client, io, output }, args, values) {
      if (args.length > 0) throw new UsageError(`watch takes no arguments (filters are flags): ${args.join(" ")}`);
      const stop = new AbortController();
      const end = () => stop.abort();
      process.once("SIGINT", end);
      process.once("SIGTERM", end);
      try {
        for await (const event of client.serviceEvents(query(values) as never, { signal: stop.signal })) {
          if (output === "json") {
            io.stdout.write(`${JSON.stringify(event)}\n`);
            continue;
          }
          const e = event as { type: string; index: number; instance?: Instance; reason?: string; previousStatus?: string; healthStatus?: string; enabled?: boolean; replaced?: boolean; name?: string; split?: { version: string; weight: number }[] | null; rollout?: { to: string; state: string; reason?: string } };
          const who = e.instance ? `${e.instance.id} (${e.instance.name} ${e.instance.address}:${e.instance.port})` : (e.name ?? "");
          const what =
            e.type === "health" ? `${e.previousStatus} -> ${e.healthStatus}${e.reason ? `: ${e.reason}` : ""}` :
            e.type === "maintenance" ? (e.enabled ? `on${e.reason ? `: ${e.reason}` : ""}` : "off") :
            e.type === "registered" ? (e.replaced ? "replaced" : "new") :
            e.type === "routing" ? (e.split ? e.split.map((s) => `${s.version} ${s.weight}%`).join(", ") : "no policy") + (e.rollout ? ` (rollout to ${e.rollout.to} ${e.rollout.state}${e.rollout.reason ? `: ${e.rollout.reason}` : ""})` : "") :
            e.type === "reset" ? `events were lost (${e.reason}): run services for the whole list` : "";
          io.stdout.write(`${new Date().toISOString()} ${e.type.padEnd(12)} ${who} ${what}`.trimEnd() + "\n");
        }
      } catch (err) {
        if (!stop.signal.aborted) throw err;
      } finally {
        process.off("SIGINT", end);
        process.off("SIGTERM", end);
      }
      return EXIT.ok;
    },
  },
  snapshot: {
    usage: "snapshot save <file> | snapshot restore <file>",
    summary: "save this node's registry to a file (- for stdout), or restore one (all or nothing)",
    options: {},
    async run({ client, io, output }, args) {
      const [action, file, ...rest] = args;
      if ((action !== "save" && action !== "restore") || file === undefined || rest.length > 0) throw new UsageError("expected: snapshot save <file> | snapshot restore <file>");
      if (action === "save") {
        const text = await client.saveSnapshot();
        const header = JSON.parse(text.slice(0, text.indexOf(',"body":')) + "}") as { count: number; sha256: string };
        if (file === "-") io.stdout.write(text);
        else {
          await writeFile(file, text, { mode: 0o600 });
          io.stdout.write(output === "json" ? json({ file, count: header.count, sha256: header.sha256, bytes: Buffer.byteLength(text) }) : `saved ${header.count} instances to ${file} (sha256 ${header.sha256})\n`);
        }
        return EXIT.ok;
      }
      const text = file === "-" ? await readStdin() : await readFile(file, "utf8").catch((err: Error) => {
        throw new UsageError(`cannot read ${file}: ${err.message}`);
      });
      const result = await client.restoreSnapshot(text);
      io.stdout.write(output === "json" ? json(result) : `restored ${result.restored} instances (${result.removed} removed, ${result.skipped.length} left to their source or owner), ${result.routingPolicies} routing policies\n`);
      for (const s of output === "json" ? [] : result.skipped) io.stdout.write(`  skipped ${s.id}: ${s.reason}\n`);
      return EXIT.ok;
    },
  },
  status: {
    usage: "status",
    summary: "the server's status, version, node and uptime",
    options: {},
    async run({ client, io, output }, args) {
      if (args.length > 0) throw new UsageError("status takes no arguments");
      const status = await client.status();
      io.stdout.write(output === "json" ? json(status) : instanceDetail(status as never));
      return status.status === "failed" ? EXIT.server : EXIT.ok;
    },
  },
};

function mainHelp(): string {
  return `Usage: homelab-discovery <command> [flags]

Commands (each talks to a running server over its API; see homelab-discovery <command> --help):
  serve
      start the server (the default; homelab-discovery serve --help lists its settings)
${Object.values(COMMANDS)
  .map((c) => `  ${c.usage}\n      ${c.summary}`)
  .join("\n")}
  completion bash|zsh
      print a shell completion script (source <(homelab-discovery completion bash))

${GLOBAL_HELP}`;
}

function commandHelp(name: string, c: Command): string {
  const filters = c.options === FILTERS ? `\nFilters:\n${FILTER_HELP}\n` : "";
  const own = c.options === FILTERS ? [] : Object.entries(c.options).map(([flag, o]) => `  --${flag}${o.type === "string" ? " VALUE" : ""}${o.multiple ? " (repeatable)" : ""}`);
  return `Usage: homelab-discovery ${c.usage}\n\n${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.\n${filters}${own.length ? `\nFlags:\n${own.join("\n")}\n` : ""}\n${GLOBAL_HELP}`;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Runs one CLI command; resolves to its exit code. */
export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "help" || name === undefined) {
    const about = rest[0] !== undefined ? COMMANDS[rest[0]] : undefined;
    io.stdout.write(about ? commandHelp(rest[0]!, about) : mainHelp());
    return EXIT.ok;
  }
  if (name === "completion") {
    if (rest[0] === "bash" && rest.length === 1) io.stdout.write(bashCompletion());
    else if (rest[0] === "zsh" && rest.length === 1) io.stdout.write(zshCompletion());
    else if (rest[0] === "--help" || rest[0] === "-h") io.stdout.write("Usage: homelab-discovery completion bash|zsh\n\nbash: source <(homelab-discovery completion bash), or save it in /etc/bash_completion.d/\nzsh:  source <(homelab-discovery completion zsh), or save it as _homelab-discovery in a directory of $fpath\n");
    else {
      io.stderr.write("homelab-discovery: expected: completion bash|zsh\n");
      return EXIT.usage;
    }
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr.write(`homelab-discovery: unknown command ${JSON.stringify(name)}; see homelab-discovery help\n`);
    return EXIT.usage;
  }
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: [...rest], options: { ...GLOBAL, ...command.options }, allowPositionals: true, strict: true }) as { values: Record<string, unknown>; positionals: string[] });
  } catch (err) {
    io.stderr.write(`homelab-discovery ${name}: ${(err as Error).message}; see homelab-discovery ${name} --help\n`);
    return EXIT.usage;
  }
  if (values.help) {
    io.stdout.write(commandHelp(name, command));
    return EXIT.ok;
  }
  const requested = values.json ? "json" : (values.output as string | undefined);
  if (requested !== undefined && requested !== "json" && requested !== "table") {
    io.stderr.write(`homelab-discovery ${name}: --output takes table or json, not ${JSON.stringify(requested)}\n`);
    return EXIT.usage;
  }
  const output: OutputMode = requested ?? (io.stdout.isTTY ? "table" : "json");
  let addr = (values.addr as string | undefined) ?? (env.HD_ADDR || DEFAULT_ADDR);
  if (!/^https?:\/\//i.test(addr)) addr = `http://${addr}`;
  try {
    new URL(addr);
  } catch {
    io.stderr.write(`homelab-discovery ${name}: --addr is not a URL or host:port: ${JSON.stringify(addr)}\n`);
    return EXIT.usage;
  }
  const token = (values.token as string | undefined) ?? (env.HD_TOKEN || env.HD_ADMIN_TOKEN || undefined);
  const tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  for (const [field, variable] of [["ca", "HD_CA_FILE"], ["cert", "HD_CERT_FILE"], ["key", "HD_KEY_FILE"]] as const) {
    const path = (values[field] as string | undefined) ?? (env[variable] || undefined);
    if (path === undefined) continue;
    try {
      tls[field] = await readFile(path);
    } catch (err) {
      io.stderr.write(`homelab-discovery ${name}: --${field} (${variable}): cannot read ${path}: ${(err as Error).message}\n`);
      return EXIT.usage;
    }
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    io.stderr.write(`homelab-discovery ${name}: --cert and --key go together (HD_CERT_FILE, HD_KEY_FILE)\n`);
    return EXIT.usage;
  }
  const client = new DiscoveryClient({ url: addr, ...(token ? { token } : {}), ...tls, timeoutMs: 30_000 });
  try {
    return await command.run({ client, io, output }, positionals, values);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`homelab-discovery ${name}: ${err.message}\n`);
      return EXIT.usage;
    }
    const kind = (err as { kind?: string }).kind;
    io.stderr.write(`homelab-discovery ${name}: ${(err as Error).message}\n`);
    if (kind === "not_found") return EXIT.notFound;
    if (kind === "unavailable" && /^cannot reach /.test((err as Error).message)) return EXIT.unreachable;
    return EXIT.server;
  } finally {
    await client.stop();
  }
}
