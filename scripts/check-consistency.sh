#!/usr/bin/env bash
# Are the demo cluster's three dirs identical? Exit 0 yes, 1 no (through `filesync check`).
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/check-consistency.sh [--base DIR] [--watch]
  --base DIR   parent of DIR/1, DIR/2, DIR/3 (default /tmp/filesync-demo)
  --watch      every second, compare the running nodes' state digests (cheap)
USAGE
}

base=/tmp/filesync-demo
watch=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --watch) watch=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "check-consistency.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
check() { "$root/bin/filesync.cjs" check --dirs "$base/1,$base/2,$base/3"; }

if [[ $watch -eq 0 ]]; then
  check
  exit $?
fi

# Watching asks the running nodes for their state digests over HTTP (bash's /dev/tcp, no
# extra tool) instead of hashing three trees every second: a `filesync check` a second took
# 25 % of a core, more than the three nodes together.
status() { # $1 = host:port → json: the node's HTTP answer to GET /status, or nothing
  local host="${1%:*}" port="${1##*:}"
  json=""
  { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || return 0
  printf 'GET /status HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
  IFS= read -r -d '' json <&3 || true
  exec 3<&-
}
# Builtins only, no process per check (no sed, no command substitution, no sleep command):
# this loop runs every second for as long as the demo does.
exec 5<> <(:) # a pipe nobody writes: `read -t 1` on it is a one-second sleep
while true; do
  digests=(); lines=()
  for i in 1 2 3; do
    addr="" json="" d="" q="" lock=""
    [[ -r "$base/$i/.filesync/lock" ]] && { IFS= read -r -d '' lock <"$base/$i/.filesync/lock" || true; }
    [[ $lock =~ \"advertise\":\"([^\"]*)\" ]] && addr="${BASH_REMATCH[1]}"
    [[ -n "$addr" ]] && status "$addr"
    [[ $json =~ \"digest\":\"([^\"]*)\" ]] && d="${BASH_REMATCH[1]}"
    [[ $json =~ \"applyQueued\":([0-9]+) ]] && q="${BASH_REMATCH[1]}"
    digests+=("${d:-down}")
    lines+=("node $i ${addr:-(not running)}  digest ${d:-?}  queued ${q:-?}")
  done
  verdict="SYNCING"
  [[ "${digests[0]}" != down && "${digests[0]}" == "${digests[1]}" && "${digests[1]}" == "${digests[2]}" ]] && verdict="IN SYNC (digests agree)"
  printf '\033[H\033[2J%(%T)T  %s\n' -1 "$verdict" # clear and date as builtins
  printf '%s\n' "${lines[@]}"
  echo "(a full comparison of the trees: scripts/check-consistency.sh --base $base)"
  read -r -t 1 -u 5 _ || true
done
