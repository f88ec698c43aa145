#!/usr/bin/env bash
# Are the demo cluster's three dirs identical? Exit 0 yes, 1 no (through `filesync check`).
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/check-consistency.sh [--base DIR] [--watch]
  --base DIR   parent of DIR/1, DIR/2, DIR/3 (default /tmp/filesync-demo)
  --watch      check every second until interrupted, showing the verdict
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
while true; do
  out="$(check 2>&1)" && verdict="IDENTICAL" || verdict="DIFFERENT"
  clear
  echo "$(date +%T)  $verdict"
  echo "$out" | head -20
  sleep 1
done
