# Sourced by scripts that need Python 3.12 (py-hamt 3.x requires >= 3.12; the pinned test and
# golden venvs are made with 3.12). Sets PY312 to a working python3.12 with venv, looking at
#   $IPFS_HAMT_PYTHON312, pyenv's versions/3.12.*, ~/.pyenv/versions/3.12.*, python3.12 on PATH;
# if none works and apt-get can be used (root), installs Debian/Ubuntu's python3.12 + venv.
# Exits with a clear message when it finds none.
find_python312() {
  local cand roots=()
  command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root)/versions")
  roots+=("$HOME/.pyenv/versions")
  local cands=("${IPFS_HAMT_PYTHON312:-}")
  for r in "${roots[@]}"; do
    # newest 3.12.x first
    for cand in $(ls -d "$r"/3.12.* 2>/dev/null | sort -V -r); do cands+=("$cand/bin/python"); done
  done
  cands+=("$(command -v python3.12 2>/dev/null || true)")
  for cand in "${cands[@]}"; do
    if [ -n "$cand" ] && [ -x "$cand" ] &&
      "$cand" -c 'import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      PY312="$cand"
      return 0
    fi
  done
  return 1
}

if ! find_python312; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-cache show python3.12-venv >/dev/null 2>&1 || apt-get update -qq >&2 || true
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null &&
    apt-cache show python3.12-venv >/dev/null 2>&1; then
    echo "python312: installing python3.12 and python3.12-venv with apt-get" >&2
    apt-get install -y -qq python3.12 python3.12-venv >&2
  fi
  find_python312 || {
    echo "Python 3.12 with venv not found (py-hamt 3.6.0 needs >= 3.12): tried \$IPFS_HAMT_PYTHON312," \
      "\$(pyenv root)/versions/3.12.*, ~/.pyenv/versions/3.12.*, python3.12 on PATH, and apt's" \
      "python3.12. Install one (e.g. 'pyenv install 3.12') or set IPFS_HAMT_PYTHON312." >&2
    exit 1
  }
fi
