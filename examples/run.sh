#!/usr/bin/env bash
# Builds and runs the examples against the embedded WCFS test server, and
# fails if one fails or leaves a mount or a file behind (in /tmp, where they
# mount, or in the work tree).
# Usage: examples/run.sh [rust] [c] [python] [valgrind]   (default: rust c python)
#   valgrind: the C example under valgrind memcheck (0 errors, no leak)
# Environment: PYTHON_VENV, a venv with wcfs_rs and numpy (else python is
# skipped with a note: python/test.sh and .ci/wheel make one).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
what=("$@")
[ ${#what[@]} -gt 0 ] || what=(rust c python)
target_dir="${CARGO_TARGET_DIR:-$root/target}"
export WCFS_TESTSERVER="$target_dir/release/wcfs-testserver"
cargo build --release -q -p wcfs-testkit --bin wcfs-testserver

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# What could be left behind: mounts, /tmp entries, untracked files.
state() {
    grep -o ' /tmp/wcfs-example-[^ ]*' /proc/self/mountinfo || true
    ls -d /tmp/wcfs-example-* 2>/dev/null || true
    git status --porcelain --untracked-files=all
}
before=$(state)

# The C example, built as a user would: wcfs.pc for pkg-config.
build_c() {
    command -v pkg-config >/dev/null || { apt-get update -qq && apt-get install -y -qq pkg-config; }
    cargo build --release -q -p wcfs-capi
    sed -e "s|@LIBDIR@|$target_dir/release|" -e "s|@INCLUDEDIR@|$root/backend-linux/capi/include|" \
        -e "s|@VERSION@|$(cargo pkgid -p wcfs-capi | sed 's/.*[#@]//')|" \
        backend-linux/capi/wcfs.pc.in >"$scratch/wcfs.pc"
    # shellcheck disable=SC2046
    ${CC:-cc} -std=c11 -Wall -Wextra -Werror -O1 -g examples/c/pins.c -o "$scratch/pins" -pthread \
        $(PKG_CONFIG_PATH="$scratch" pkg-config --cflags --libs wcfs) -Wl,-rpath,"$target_dir/release"
}

for w in "${what[@]}"; do
    printf '\n--- example: %s\n' "$w"
    case "$w" in
        rust)
            cargo build --release -q -p wcfs-examples --bin wcfs-example-pins
            "$target_dir/release/wcfs-example-pins"
            ;;
        c)
            build_c
            "$scratch/pins"
            ;;
        valgrind)
            command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
            build_c
            # WCFS_EXAMPLE_NO_RACE: see pins.c.
            WCFS_EXAMPLE_NO_RACE=1 valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
                --log-file="$scratch/valgrind.log" "$scratch/pins" || { cat "$scratch/valgrind.log"; exit 1; }
            # --errors-for-leak-kinds=definite: std keeps a handle of the C
            # main thread (thread::current) in a thread-local that exit()
            # does not free, reported as 48 bytes "possibly lost".
            grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|All heap' "$scratch/valgrind.log"
            ;;
        python)
            py="${PYTHON_VENV:+$PYTHON_VENV/bin/python}"
            if [ -z "$py" ] || ! "$py" -c 'import wcfs_rs, numpy' 2>/dev/null; then
                echo "python example SKIPPED: set PYTHON_VENV to a venv with wcfs_rs and numpy"
                continue
            fi
            "$py" examples/python/pins.py
            ;;
        *) echo "unknown example $w" >&2; exit 2 ;;
    esac
done

after=$(state)
if [ "$before" != "$after" ]; then
    printf 'left behind by the examples:\n%s\n' "$(comm -13 <(echo "$before" | sort) <(echo "$after" | sort))" >&2
    exit 1
fi
