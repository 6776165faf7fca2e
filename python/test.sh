#!/usr/bin/env bash
# Builds the Python module and runs its tests, on a fresh machine too:
# a throwaway virtual environment (target/python-venv, or $WCFS_PY_VENV)
# with maturin, pytest and numpy from PyPI; `pip install ./python`; the
# test server binary built by cargo; then pytest (without pygolang), then
# the `_wcfs`-shaped layer's tests again with pygolang (test_pygolang.sh).
# Exits non-zero on any failure; the last line printed is pytest's summary.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

python="${PYTHON:-python3}"
venv="${WCFS_PY_VENV:-$root/target/python-venv}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

step() { printf '\n=== python: %s\n' "$*"; }

step "virtual environment $venv"
if [ ! -x "$venv/bin/python" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q maturin pytest numpy </dev/null
export PATH="$venv/bin:$PATH" # maturin, for the build without isolation

step "build and install wcfs_rs (pip install ./python)"
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps --no-build-isolation ./python </dev/null

step "build the test server"
cargo build --release -q -p wcfs-testkit --bin wcfs-testserver </dev/null
target_dir="${CARGO_TARGET_DIR:-$root/target}"
export WCFS_TESTSERVER="$target_dir/release/wcfs-testserver"

step "pytest"
cd "$here"
WCFS_EXPECT_PYGOLANG=0 "$venv/bin/python" -m pytest -p no:cacheprovider --capture=sys -ra tests </dev/null
exec "$here/test_pygolang.sh"
