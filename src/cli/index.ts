// cli: `homelab-discovery <command>`, a client of a running server (cli.ts: commands, parsing, exit codes;
// output.ts: tables and JSON; completion.ts: bash and zsh). It imports src/client only.
export { CLI_COMMANDS, DEFAULT_ADDR, EXIT, runCli } from "./cli.js";
