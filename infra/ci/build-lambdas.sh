#!/usr/bin/env bash
# infra/ci/build-lambdas.sh — release builds of every function for arm64 Lambda (I2), as
# `sam build` makes them (cargo-lambda, `provided.al2023`), then a table of artifact sizes.
#
#   infra/ci/build-lambdas.sh
#
# cargo-lambda (and the zig it cross-links with) comes from PyPI into its own virtualenv under
# ${CONTINUITY_HOME:-$HOME/.cache/email-continuity}/tools. The first run adds the
# aarch64-unknown-linux-gnu standard library to the toolchain (cargo-lambda does that itself).
# Artifacts: target/lambda/<binary>/bootstrap. The cross build lives in
# target/aarch64-unknown-linux-gnu, so it leaves the host's target/debug untouched.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=infra/ci/venv.sh
source infra/ci/venv.sh

CARGO_LAMBDA_VERSION="1.9.2"
venv="$(ensure_venv cargo-lambda "cargo-lambda==$CARGO_LAMBDA_VERSION")"
# cargo finds `cargo-lambda` on PATH; cargo-lambda finds zig through the venv's python (ziglang).
export PATH="$venv/bin:$PATH"

# Every package under functions/ and its binaries, from cargo's own metadata (no guessing).
mapfile -t FUNCS < <(cargo metadata --no-deps --format-version 1 --locked | "$venv/bin/python" -c '
import json, os, sys
meta = json.load(sys.stdin)
root = os.path.join(meta["workspace_root"], "functions") + os.sep
for p in meta["packages"]:
    if p["manifest_path"].startswith(root):
        for t in p["targets"]:
            if "bin" in t["kind"]:
                print(p["name"], t["name"])
')
[[ ${#FUNCS[@]} -gt 0 ]] || { echo "build-lambdas.sh: no function binaries found under functions/" >&2; exit 1; }

pkgs=()
for f in "${FUNCS[@]}"; do pkgs+=(-p "${f%% *}"); done
echo "== cargo lambda build --release --arm64 ${pkgs[*]}"
cargo lambda build --release --arm64 --locked "${pkgs[@]}"

echo "== arm64 Lambda artifacts"
printf '%-24s %14s %10s\n' binary bytes MiB
for f in "${FUNCS[@]}"; do
  bin="${f##* }"
  art="target/lambda/$bin/bootstrap"
  [[ -f "$art" ]] || { echo "build-lambdas.sh: $art missing after the build" >&2; exit 1; }
  # ELF e_machine (2 bytes at offset 18) is 183 for aarch64; od is in coreutils, file(1) may not be.
  [[ "$(od -An -tu2 -j18 -N2 "$art" | tr -d ' ')" == 183 ]] \
    || { echo "build-lambdas.sh: $art is not an aarch64 ELF binary" >&2; exit 1; }
  size="$(stat -c %s "$art")"
  printf '%-24s %14s %10s\n' "$bin" "$(printf "%'d" "$size" 2>/dev/null || echo "$size")" "$(awk -v s="$size" 'BEGIN{printf "%.1f", s/1048576}')"
done
