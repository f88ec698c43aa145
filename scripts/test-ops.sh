#!/usr/bin/env bash
# Random file churn across the demo cluster's three dirs: creates, edits, appends, renames,
# deletes, nested dirs and binary files. The same seed makes the same operations.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/test-ops.sh [--base DIR] [--count N] [--seed S] [--interval MS]
  --base DIR      parent of DIR/1, DIR/2, DIR/3 (default /tmp/filesync-demo)
  --count N       number of operations (default: endless)
  --seed S        seed of the operation sequence (default: random)
  --interval MS   pause between operations (default 100)
USAGE
}

base=/tmp/filesync-demo
count=-1
seed=$$
interval=100
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --count) count="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --interval) interval="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "test-ops.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
for v in count seed interval; do
  [[ "${!v}" =~ ^-?[0-9]+$ ]] || { echo "test-ops.sh: --$v must be a whole number" >&2; exit 2; }
done
for i in 1 2 3; do [[ -d "$base/$i" ]] || { echo "test-ops.sh: $base/$i does not exist (start the cluster first)" >&2; exit 1; }; done

RANDOM=$seed
sleep_s="$(awk -v ms="$interval" 'BEGIN { printf "%.3f", ms / 1000 }')"
progress_every=100
declare -a files=()   # "dirindex:relative path" of files this run made

# Byte escapes looked up, not formatted per byte: a subshell per byte made 1000 bytes take 13 s.
declare -a hex=()
for ((i = 0; i < 256; i++)); do printf -v 'hex[i]' '\\x%02x' "$i"; done
binary() { # $1 = path, $2 = bytes: deterministic bytes from $RANDOM
  local out="" n=$2 i
  for ((i = 0; i < n; i++)); do out+="${hex[RANDOM % 256]}"; done
  printf "$out" > "$1"
}

md() { [[ -d "$1" ]] || mkdir -p "$1"; } # no fork when the dir exists: ops/s at --interval 0

pick() { # choose one of our files that still exists; sets d and f, or returns 1
  local tries=0 e
  while ((${#files[@]} > 0 && tries < 5)); do
    e="${files[$((RANDOM % ${#files[@]}))]}"
    d="${e%%:*}"; f="${e#*:}"
    [[ -f "$base/$d/$f" ]] && return 0
    tries=$((tries + 1))
  done
  return 1
}

n=0
while [[ $count -lt 0 || $n -lt $count ]]; do
  n=$((n + 1))
  op=$((RANDOM % 100))
  dir=$((RANDOM % 3 + 1))
  name="dir$((RANDOM % 4))/file$n.txt"
  if ((op < 30)) || ! pick; then
    md "$base/$dir/${name%/*}"
    echo "file $n written on node $dir, seed $seed" > "$base/$dir/$name"
    files+=("$dir:$name")
  elif ((op < 45)); then
    echo "edit $n" > "$base/$d/$f"
  elif ((op < 60)); then
    echo "append $n" >> "$base/$d/$f"
  elif ((op < 72)); then
    to="dir$((RANDOM % 4))/renamed$n.txt"
    md "$base/$d/${to%/*}"
    mv "$base/$d/$f" "$base/$d/$to" 2>/dev/null && files+=("$d:$to") || true
  elif ((op < 84)); then
    rm -f "$base/$d/$f"
  elif ((op < 92)); then
    deep="nest$((RANDOM % 3))/a$((RANDOM % 3))/b$((RANDOM % 3))"
    md "$base/$dir/$deep"
    echo "nested $n" > "$base/$dir/$deep/leaf$n.txt"
    files+=("$dir:$deep/leaf$n.txt")
  else
    md "$base/$dir/bin"
    binary "$base/$dir/bin/blob$n.bin" $((512 + RANDOM % 1536))
    files+=("$dir:bin/blob$n.bin")
  fi
  ((interval > 0)) && sleep "$sleep_s"
  ((n % progress_every == 0)) && echo "test-ops.sh: $n operations (seed $seed)" >&2
done
echo "test-ops.sh: $n operations done (seed $seed)"
