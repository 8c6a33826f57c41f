// app: one process put together. config.ts (one settings table: flags, HD_ variables, the file, defaults and
// --help), server.ts (wires store, registry, checker, services files, DNS, HTTP and cluster mode; reload; stop),
// discovery.ts (the embedded registry with its checker), metrics.ts (Prometheus), log.ts (the pino root).
export { ConfigError, defaultConfig, envName, helpText, loadConfig, SETTINGS, type CliCommand, type Config, type SettingKey } from "./config.js";
export { startServer, type ServerDeps, type ServerHandle } from "./server.js";
export { startDiscovery, type EmbeddedOptions } from "./discovery.js";
export { Metrics } from "./metrics.js";
export { createLogger } from "./log.js";
