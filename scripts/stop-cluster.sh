#!/usr/bin/env bash
# Stop exactly the nodes the demo cluster started (by the pid each wrote in its lock file),
# cleanly (SIGTERM, then wait), and close the tmux session.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/stop-cluster.sh [--base DIR] [--session NAME]
  --base DIR       parent of DIR/1, DIR/2, DIR/3 (default /tmp/filesync-demo)
  --session NAME   tmux session name (default filesync-demo)
USAGE
}

base=/tmp/filesync-demo
session=filesync-demo
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --session) session="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "stop-cluster.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

pids=()
for i in 1 2 3; do
  lock="$base/$i/.filesync/lock"
  [[ -f "$lock" ]] || continue
  pid="$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$lock")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && pids+=("$pid")
done
for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
# Bounded wait for a clean exit (log flushed, snapshot written).
for _ in $(seq 1 100); do
  alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [[ $alive -eq 0 ]] && break
  sleep 0.1
done
for pid in "${pids[@]}"; do
  if kill -0 "$pid" 2>/dev/null; then
    echo "stop-cluster.sh: node pid $pid did not stop in 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
done
had_session=0
tmux kill-session -t "$session" 2>/dev/null && had_session=1
if [[ ${#pids[@]} -eq 0 && $had_session -eq 0 ]]; then
  echo "stop-cluster.sh: nothing was running (no node in $base/{1,2,3}, no tmux session '$session')"
  exit 0
fi
echo "stopped ${#pids[@]} node(s) and session '$session'"
