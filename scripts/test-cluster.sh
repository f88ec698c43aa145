#!/usr/bin/env bash
# Start a 3-node chained filesync demo cluster in tmux: node 2 --peers node 1, node 3 --peers
# node 2, and a fourth pane watching consistency. Stop it with scripts/stop-cluster.sh.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/test-cluster.sh [--base DIR] [--session NAME] [--base-port P] [--detach]
  --base DIR       parent of the three synced dirs DIR/1, DIR/2, DIR/3 (default /tmp/filesync-demo)
  --session NAME   tmux session name (default filesync-demo)
  --base-port P    node ports P, P+1, P+2 (default 7461)
  --detach         start and return instead of attaching
USAGE
}

base=/tmp/filesync-demo
session=filesync-demo
port=7461
detach=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --session) session="$2"; shift 2 ;;
    --base-port) port="$2"; shift 2 ;;
    --detach) detach=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "test-cluster.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$port" =~ ^[0-9]+$ ]] || { echo "test-cluster.sh: --base-port must be a number" >&2; exit 2; }
command -v tmux >/dev/null || { echo "test-cluster.sh: tmux is not installed (apt-get install tmux)" >&2; exit 1; }
if tmux has-session -t "$session" 2>/dev/null; then
  echo "test-cluster.sh: tmux session '$session' already exists (scripts/stop-cluster.sh --session $session)" >&2
  exit 1
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
fs="$root/bin/filesync.cjs" # run through its shebang, which sets node's memory flags
p1=$port; p2=$((port + 1)); p3=$((port + 2))
# A taken port would make a node fail, and the next ones join whatever holds it.
for p in $p1 $p2 $p3; do
  if { exec 3<>"/dev/tcp/127.0.0.1/$p"; } 2>/dev/null; then
    exec 3<&-
    echo "test-cluster.sh: port $p is in use: pick other ports with --base-port" >&2
    exit 1
  fi
done
mkdir -p "$base/1" "$base/2" "$base/3"

# Each pane runs its command directly; panes are addressed by id (indices move on splits).
n1=$(tmux new-session -d -P -F '#{pane_id}' -s "$session" -x 220 -y 64 -n cluster \
  "$fs --dir $base/1 --port $p1")
tmux source-file "$root/tmux/cluster.conf"
n2=$(tmux split-window -P -F '#{pane_id}' -t "$n1" -h "$fs --dir $base/2 --port $p2 --peers 127.0.0.1:$p1")
n3=$(tmux split-window -P -F '#{pane_id}' -t "$n1" -v "$fs --dir $base/3 --port $p3 --peers 127.0.0.1:$p2")
w=$(tmux split-window -P -F '#{pane_id}' -t "$n2" -v "$root/scripts/check-consistency.sh --base $base --watch")
tmux select-pane -t "$n1" -T "node 1 :$p1"
tmux select-pane -t "$n2" -T "node 2 :$p2"
tmux select-pane -t "$n3" -T "node 3 :$p3"
tmux select-pane -t "$w" -T "consistency"
tmux select-layout -t "$session:cluster" tiled >/dev/null
# Started means listening: each node names its address in its lock file once it listens.
for i in 1 2 3; do
  want="127.0.0.1:$((port + i - 1))"
  for _ in $(seq 1 300); do
    grep -q "\"advertise\":\"$want\"" "$base/$i/.filesync/lock" 2>/dev/null && break
    sleep 0.1
  done
  if ! grep -q "\"advertise\":\"$want\"" "$base/$i/.filesync/lock" 2>/dev/null; then
    echo "test-cluster.sh: node $i did not start listening on $want within 30 s; stopping" >&2
    "$root/scripts/stop-cluster.sh" --base "$base" --session "$session" >/dev/null 2>&1 || true
    exit 1
  fi
done
echo "cluster '$session' started: dirs $base/{1,2,3}, ports $p1-$p3"
echo "  make churn:  scripts/test-ops.sh --base $base"
echo "  stop:        scripts/stop-cluster.sh --base $base --session $session"
if [[ $detach -eq 0 ]]; then exec tmux attach -t "$session"; fi
