#compdef mysqllogfs
# zsh completion for mysqllogfs: source <(mysqllogfs completion zsh)
_mysqllogfs() {
  local -a opts before
  local cur=${words[CURRENT]}
  before=("${(@)words[1,CURRENT-1]}")
  # The program lists the words that may come next, unless the line holds --: past it,
  # --generate-bash-completion is an argument and the command would run. File names there.
  if (( ${before[(I)--]} )); then
    _files
    return
  fi
  if [[ $cur == -* ]]; then
    [[ $cur == -- ]] && cur=- # the flags, not the end of them
    opts=("${(@f)$("${(@)before}" $cur --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$("${(@)before}" --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ ${opts[1]} != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _mysqllogfs mysqllogfs
