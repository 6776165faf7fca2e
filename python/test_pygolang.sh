#!/usr/bin/env bash
# Runs the tests of wcfs_rs.wendelin (the `_wcfs`-shaped layer,
# tests/test_wendelin.py) with pygolang installed, in a second throwaway
# virtual environment (target/python-venv-golang, or $WCFS_PY_GOLANG_VENV);
# test.sh runs them without pygolang in its own. pygolang 0.1 from PyPI
# builds only with Cython 2 and without build isolation, hence the two
# steps; the venv is kept, so this is done once per checkout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

python="${PYTHON:-python3}"
venv="${WCFS_PY_GOLANG_VENV:-$root/target/python-venv-golang}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

step() { printf '\n=== python (pygolang): %s\n' "$*"; }

step "virtual environment $venv"
if [ ! -x "$venv/bin/python" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q maturin pytest </dev/null
if ! "$venv/bin/python" -c 'import golang, golang.context, golang.errors' >/dev/null 2>&1; then
    step "install pygolang (Cython 2, no build isolation)"
    "$venv/bin/python" -m pip install -q 'Cython<3' setuptools_dso wheel gevent </dev/null
    "$venv/bin/python" -m pip install -q --no-build-isolation pygolang </dev/null
fi
export PATH="$venv/bin:$PATH" # maturin, for the build without isolation

step "build and install wcfs_rs (pip install ./python)"
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps --no-build-isolation ./python </dev/null

if [ -z "${WCFS_TESTSERVER:-}" ]; then
    cargo build --release -q -p wcfs-testkit --bin wcfs-testserver </dev/null
    export WCFS_TESTSERVER="${CARGO_TARGET_DIR:-$root/target}/release/wcfs-testserver"
fi

step "pytest tests/test_wendelin.py"
cd "$here"
WCFS_EXPECT_PYGOLANG=1 exec "$venv/bin/python" -m pytest -p no:cacheprovider --capture=sys -ra tests/test_wendelin.py </dev/null
