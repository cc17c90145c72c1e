#compdef mysqllogfs
# zsh completion for mysqllogfs: source <(mysqllogfs completion zsh)
_mysqllogfs() {
  local -a opts
  local cur=${words[-1]}
  # After --, the program would take --generate-bash-completion for an argument and run the
  # command: complete file names instead.
  if (( ${words[(I)--]} > 0 && ${words[(I)--]} < ${#words} )); then
    _files
    return
  fi
  if [[ $cur == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} $cur --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ ${opts[1]} != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _mysqllogfs mysqllogfs
