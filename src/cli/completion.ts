// Shell completion scripts: `homelab-discovery completion bash|zsh` prints one to source.

export const COMMANDS = ["serve", "services", "get", "register", "deregister", "maint", "check", "watch", "snapshot", "status", "completion", "help"] as const;
const GLOBAL = "--addr --token --ca --cert --key --output --json --help";
const FLAGS: Record<string, string> = {
  services: "--name --tag --version --health --node --meta",
  watch: "--name --tag --version --health --node --meta",
  register: "--file --id --name --version --address --port --node --tag --meta --health-endpoint --ttl --tcp-check --force",
  deregister: "--force",
  maint: "--reason",
};

export function bashCompletion(): string {
  const cases = Object.entries(FLAGS)
    .map(([cmd, flags]) => `    ${cmd}) flags="${flags} ${GLOBAL}" ;;`)
    .join("\n");
  return `# bash completion for homelab-discovery: source <(homelab-discovery completion bash)
_homelab_discovery() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd="\${COMP_WORDS[1]}" flags
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${COMMANDS.join(" ")} --help --version" -- "$cur"))
    return
  fi
  case "$cmd" in
${cases}
    snapshot) if [ "$COMP_CWORD" -eq 2 ]; then COMPREPLY=($(compgen -W "save restore" -- "$cur")); return; fi
              COMPREPLY=($(compgen -f -- "$cur")); return ;;
    completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")); return ;;
    *) flags="${GLOBAL}" ;;
  esac
  if [ "$cmd" = maint ] && [ "$COMP_CWORD" -eq 2 ]; then COMPREPLY=($(compgen -W "on off" -- "$cur")); return; fi
  case "$cur" in
    -*) COMPREPLY=($(compgen -W "$flags" -- "$cur")) ;;
    *) if [ "\${COMP_WORDS[COMP_CWORD-1]}" = --file ]; then COMPREPLY=($(compgen -f -- "$cur")); fi ;;
  esac
}
complete -F _homelab_discovery homelab-discovery
`;
}

export function zshCompletion(): string {
  const cases = Object.entries(FLAGS)
    .map(([cmd, flags]) => `    ${cmd}) compadd -- ${flags} ${GLOBAL} ;;`)
    .join("\n");
  return `#compdef homelab-discovery
# zsh completion for homelab-discovery: source <(homelab-discovery completion zsh), or save as _homelab-discovery in $fpath
_homelab_discovery() {
  if (( CURRENT == 2 )); then
    compadd -- ${COMMANDS.join(" ")} --help --version
    return
  fi
  case "$words[2]" in
${cases}
    snapshot) if (( CURRENT == 3 )); then compadd -- save restore; else _files; fi ;;
    maint) if (( CURRENT == 3 )); then compadd -- on off; else compadd -- --reason ${GLOBAL}; fi ;;
    completion) compadd -- bash zsh ;;
    *) compadd -- ${GLOBAL} ;;
  esac
}
if (( $+functions[compdef] )); then compdef _homelab_discovery homelab-discovery; fi
`;
}
