#!/usr/bin/env bash
# Starts the test node: js-ipfs 0.66.1 (npm, pinned by package-lock.json) on 127.0.0.1, with a
# Kubo-style RPC API and gateway (kubo-layer.mjs), offline, on a fresh temporary repo.
#
#   eval "$(testnode/start.sh | sed 's/^/export /')"    # IPFS_RPC_URL IPFS_GATEWAY_URL IPFS_PID IPFS_PATH
#   ...
#   testnode/stop.sh "$IPFS_PID"                         # stops it and removes its repo
#
#   testnode/start.sh --install-only                    # only the npm packages, then exit
# Only those four lines go to stdout; progress and errors go to stderr.
# Environment:
#   IPFS_API_PORT (5001), IPFS_GATEWAY_PORT (8080)  ports on 127.0.0.1; 0 = a free one (the OS
#                                                   picks it, no race with other processes)
#   KUBO_COMPAT (1)         0 = stock js-ipfs answers, without kubo-layer.mjs
#   TESTNODE_TMP            parent folder of the temporary repo (default ${TMPDIR:-/tmp})
#   TESTNODE_TIMEOUT (120)  seconds to wait for the node to answer
# The first run installs the npm packages into testnode/node_modules, exactly as package-lock.json
# pins them (under a minute, ~290 MB); later runs reuse them (re-installed when the lock changes).
# It is `npm install` with the lock, not `npm ci`: one optional dependency deep in js-ipfs's tree
# (headless, of electron-eval) points at a GitHub tarball, which cannot be fetched here and so is
# absent from the lock, and `npm ci` refuses any lock that lacks an entry. npm skips the failed
# optional package; the lock file is checked to be left unchanged.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
API_PORT="${IPFS_API_PORT:-5001}"
GATEWAY_PORT="${IPFS_GATEWAY_PORT:-8080}"
TIMEOUT="${TESTNODE_TIMEOUT:-120}"
say() { echo "testnode: $*" >&2; }
die() { say "$*"; exit 1; }

INSTALL_ONLY=0
case "${1:-}" in
  "") ;;
  --install-only) INSTALL_ONLY=1 ;;
  *) die "unknown argument $1 (usage: start.sh [--install-only])" ;;
esac
for p in "$API_PORT" "$GATEWAY_PORT"; do
  [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -le 65535 ] || die "not a port: $p"
done
command -v node >/dev/null || die "node (>= 18) is required (e.g. apt-get install nodejs npm)"
command -v npm >/dev/null || die "npm is required (e.g. apt-get install npm)"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 18 ] || die "node >= 18 is required, found $(node --version)"

# --- npm packages: installed once per package-lock.json (one installer at a time) ---
STAMP="$HERE/node_modules/.testnode-lock-sha256"
WANT="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
install_packages() {
  if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    say "installing js-ipfs into $HERE/node_modules from package-lock.json (first use)"
    local saved
    saved="$(mktemp)"
    cp "$HERE/package-lock.json" "$saved"
    (cd "$HERE" && npm install --no-save --no-audit --no-fund --fetch-retries=0 --loglevel=error >&2) ||
      { rm -f "$saved"; die "npm install failed"; }
    if ! cmp -s "$saved" "$HERE/package-lock.json"; then
      cp "$saved" "$HERE/package-lock.json"
      rm -f "$saved"
      die "npm install wanted to change package-lock.json (restored); the install does not match the lock"
    fi
    rm -f "$saved"
    [ -f "$HERE/node_modules/ipfs-daemon/package.json" ] || die "npm install did not install ipfs-daemon"
    echo "$WANT" >"$STAMP"
  fi
}
if command -v flock >/dev/null; then
  exec 9>"$HERE/.install-lock"
  flock 9
  install_packages
  flock -u 9
  exec 9>&-
else
  install_packages
fi
[ "$INSTALL_ONLY" = 0 ] || exit 0

# --- a fresh repo, the node, and its ready file ---
PARENT="${TESTNODE_TMP:-${TMPDIR:-/tmp}}"
mkdir -p "$PARENT"
REPO="$(mktemp -d "$PARENT/ipfs-hamt-testnode.XXXXXX")"
LOG="$REPO.log"
READY="$REPO.ready"
IPFS_PATH="$REPO/repo" TESTNODE_API_PORT="$API_PORT" TESTNODE_GATEWAY_PORT="$GATEWAY_PORT" \
  TESTNODE_READY_FILE="$READY" KUBO_COMPAT="${KUBO_COMPAT:-1}" \
  nohup node "$HERE/ipfs-node.mjs" >"$LOG" 2>&1 </dev/null &
PID=$!

fail() {
  say "$1; its log ($LOG) follows"
  sed 's/^/  | /' "$LOG" >&2 || true
  kill "$PID" 2>/dev/null || true
  rm -rf -- "$REPO" "$READY"
  exit 1
}
deadline=$((SECONDS + TIMEOUT))
until [ -s "$READY" ]; do
  kill -0 "$PID" 2>/dev/null || fail "the node exited before it was ready"
  [ "$SECONDS" -lt "$deadline" ] || fail "the node was not ready after ${TIMEOUT}s"
  sleep 0.2
done

# --- loopback only: every socket of the node must be on 127.0.0.1 / ::1 ---
if command -v ss >/dev/null; then
  outside="$(ss -Htuanp 2>/dev/null | awk -v pid="pid=$PID," 'index($0, pid) {print $5, $6}' |
    awk '{ for (i = 1; i <= 2; i++) { a = $i; sub(/:[^:]*$/, "", a);
             if (a !~ /^(127\.|\[::1\]|\[::ffff:127\.|\*$|0\.0\.0\.0$|\[::\]$)/) print $0 } }')"
  listening="$(ss -Htulnp 2>/dev/null | awk -v pid="pid=$PID," 'index($0, pid) {print $5}' |
    grep -vE '^(127\.[0-9.]+|\[::1\]|\[::ffff:127\.[0-9.]+\]):[0-9]+$' || true)"
  if [ -n "$outside$listening" ]; then
    fail "the node holds a socket outside loopback (${outside}${listening})"
  fi
else
  say "ss not found: the loopback-only socket check is skipped"
fi

grep -q "^IPFS_PID=$PID$" "$READY" || fail "ready file names another process"
say "$(tail -n 1 "$LOG")"
cat "$READY"
