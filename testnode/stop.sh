#!/usr/bin/env bash
# Stops a node started by testnode/start.sh and removes its temporary repo:
#   testnode/stop.sh PID          (KEEP_REPO=1 keeps the repo and log)
set -euo pipefail
PID="${1:?usage: stop.sh PID}"
[[ "$PID" =~ ^[0-9]+$ ]] || { echo "stop.sh: not a process id: $PID" >&2; exit 2; }
if ! kill -0 "$PID" 2>/dev/null; then
  echo "stop.sh: no process $PID (already stopped)" >&2
  exit 0
fi
# Only a test node: its command line runs ipfs-node.mjs.
if ! tr '\0' ' ' <"/proc/$PID/cmdline" 2>/dev/null | grep -q 'ipfs-node\.mjs'; then
  echo "stop.sh: process $PID is not a test node; not stopping it" >&2
  exit 1
fi
REPO="$(tr '\0' '\n' <"/proc/$PID/environ" 2>/dev/null | sed -n 's/^IPFS_PATH=//p' | head -n 1 || true)"
kill -TERM "$PID"
for _ in $(seq 1 100); do
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$PID" 2>/dev/null; then
  echo "stop.sh: $PID still running 10 s after SIGTERM; sending SIGKILL" >&2
  kill -KILL "$PID" 2>/dev/null || true
fi
# start.sh's layout: <tmp>/ipfs-hamt-testnode.XXXXXX/repo, plus .log and .ready beside it.
TOP="${REPO%/repo}"
case "$TOP" in
  */ipfs-hamt-testnode.??????)
    if [ "${KEEP_REPO:-0}" = 1 ]; then
      echo "stopped $PID (kept $TOP)"
    else
      rm -rf -- "$TOP" "$TOP.log" "$TOP.ready"
      echo "stopped $PID"
    fi
    ;;
  *) echo "stopped $PID" ;;
esac
