#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment at .venv and installs
# the project into it, at the exact versions of constraints.txt (the ones the test
# suite passes on; `make lock-upgrade` moves them). Re-installs only when setup.cfg,
# pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
STAMP="$VENV/.mentorgym-install-stamp"
want=$(cat setup.cfg pyproject.toml constraints.txt scripts/ensure_venv.sh | sha256sum | cut -d' ' -f1)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
    exit 0
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "mentorgym needs Python >= 3.10; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
    exit 1
fi
if ! command -v java >/dev/null 2>&1; then
    echo "warning: no 'java' on PATH. ScienceWorld-v0 needs a Java runtime >= 8" >&2
    echo "         (Debian/Ubuntu: sudo apt-get install default-jre-headless)." >&2
fi

echo "Setting up $VENV (first run takes a few minutes: torch, transformers, alfworld's planner) ..."
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip_quiet() {
    # pip prints one warning per package for absent mirror folders on some machines; hide only those.
    "$VENV/bin/python" -m pip "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
}
pip_quiet install -q --upgrade pip setuptools wheel
# The CPU build of torch is installed first and on its own, so that no dependency pulls in a CUDA build.
pip_quiet install -q -c constraints.txt torch
pip_quiet install -q -c constraints.txt -e ".[test,plot,lora]"
"$VENV/bin/python" -c "import envs, agents, gymnasium, scienceworld" \
    || { echo "The installation in $VENV is incomplete; see the pip output above." >&2; exit 1; }
echo "$want" > "$STAMP"
