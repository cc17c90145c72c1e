# bash completion for mysqllogfs: source <(mysqllogfs completion bash)
_mysqllogfs() {
  COMPREPLY=()
  local cur=${COMP_WORDS[COMP_CWORD]}
  local words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  local w opts
  # The program lists the words that may come next, unless the line holds --: past it,
  # --generate-bash-completion is an argument and the command would run. File names there.
  for w in "${words[@]}"; do
    [[ $w == -- ]] && return 0
  done
  if [[ $cur == -* ]]; then
    [[ $cur == -- ]] && cur=- # the flags, not the end of them
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
    cur=${COMP_WORDS[COMP_CWORD]}
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _mysqllogfs mysqllogfs
