#!/usr/bin/env node
// CLI: read the config, start the server, stop cleanly on SIGTERM/SIGINT. Exit 2 on a bad setting.
import { ConfigError, helpText, loadConfig } from "./app/index.js";
import { createLogger } from "./app/index.js";
import { startServer } from "./app/index.js";
import { VERSION } from "./lib/version.js";
import { CLI_COMMANDS, runCli } from "./cli/index.js";

async function main(): Promise<number> {
  // `homelab-discovery <command>` is the client (src/cli); no command, flags only, or `serve` start the server.
  const first = process.argv[2];
  if (first !== undefined && CLI_COMMANDS.has(first)) return runCli(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });
  let command;
  try {
    command = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`homelab-discovery: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (command.kind === "help") {
    process.stdout.write(helpText());
    process.stdout.write("\nClient commands (services, get, register, deregister, maint, check, watch, snapshot, status, completion):\n  homelab-discovery help\n");
    return 0;
  }
  if (command.kind === "version") {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const { config } = command;
  const logger = createLogger(config.logLevel);
  logger.info({ version: VERSION, nodeId: config.nodeId, cluster: config.clusterName, domain: config.domain, node: process.version }, "homelab-discovery starting");
  for (const warning of command.warnings) logger.warn(warning);
  let server;
  try {
    server = await startServer(config, { logger });
  } catch (err) {
    logger.fatal({ err }, `cannot start: ${(err as Error).message}`);
    logger.flush();
    return 1;
  }
  const running = server;
  await new Promise<void>((resolve) => {
    const shutdown = (signal: NodeJS.Signals) => {
      logger.info({ signal }, "shutting down");
      const force = setTimeout(() => {
        logger.error("shutdown took longer than 5 s; exiting anyway");
        process.exit(1);
      }, 5_000);
      force.unref();
      running.stop().then(resolve, (err: unknown) => {
        logger.error({ err }, "error while stopping");
        resolve();
      });
    };
    process.once("SIGTERM", shutdown);
    process.once("SIGINT", shutdown);
    process.on("SIGHUP", () => {
      logger.info({ signal: "SIGHUP" }, "reloading");
      void running.reload();
    });
  });
  logger.info("stopped");
  logger.flush();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`homelab-discovery: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
