# bash completion for mysqllogfs: source <(mysqllogfs completion bash)
_mysqllogfs() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  local w opts
  for w in "${words[@]}"; do
    # After --, the program would take --generate-bash-completion for an argument and run
    # the command: complete file names instead.
    [[ $w == -- ]] && return 0
  done
  if [[ $cur == -* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _mysqllogfs mysqllogfs
