#!/usr/bin/env bash
# The arm64 (Graviton) release build of every Lambda function, as AWS runs them.
#
#   local/build-arm64.sh           build price-api, poller, ma-consumer and db-migrate for aarch64 and zip
#                                  each (cargo lambda build --release --arm64 --output-format zip)
#   local/build-arm64.sh --tools   only install what the build needs (before `sam build`)
#
# Installs what it lacks: the Rust target aarch64-unknown-linux-gnu (rustup), cargo-lambda and
# ziglang (pip; zig is the cross C compiler and linker cargo-lambda drives), cmake (apt:
# librdkafka is built with CMake for aarch64, see shared/Cargo.toml).
#
# CARGO_TARGET_DIR defaults to ~/.cache/mdb/target-arm64, apart from the host builds of
# local/test.sh (~/.cache/mdb/target), so the two never wait on each other's lock. The zips are
# $CARGO_TARGET_DIR/lambda/<function>/bootstrap.zip; the script prints each binary's and zip's
# size and what `file` says of the binary (it must be ELF 64-bit ... ARM aarch64).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TARGET=aarch64-unknown-linux-gnu
FUNCTIONS=(price-api poller ma-consumer db-migrate)

say() { printf '==> %s\n' "$*"; }
die() { printf 'build-arm64.sh: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# pip into the current Python, or into the user site where that Python is externally
# managed (Debian's own, PEP 668).
pip_install() {
  python3 -m pip install -q "$@" 2>/dev/null || python3 -m pip install -q --user "$@"
  hash -r
}

install_tools() {
  command -v cargo >/dev/null || die "cargo missing: install Rust (https://rustup.rs)"
  if ! rustup target list --installed | grep -qx "$TARGET"; then
    say "rustup target add $TARGET"
    rustup target add "$TARGET"
  fi
  if ! cargo lambda --version >/dev/null 2>&1; then
    say "pip install cargo-lambda"
    pip_install cargo-lambda
    cargo lambda --version >/dev/null 2>&1 ||
      die "cargo-lambda installed but not on PATH (add ~/.local/bin to PATH)"
  fi
  if ! command -v zig >/dev/null && ! python3 -c 'import ziglang' 2>/dev/null; then
    say "pip install ziglang"
    pip_install ziglang
  fi
  local missing=() tool
  for tool in cmake file; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    command -v apt-get >/dev/null || die "${missing[*]} missing and apt-get unavailable: install it"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

build() {
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mdb/target-arm64}
  local packages=() f
  for f in "${FUNCTIONS[@]}"; do packages+=(-p "$f"); done

  say "cargo lambda build --release --arm64 --output-format zip ${packages[*]}"
  local start=$SECONDS
  cargo lambda build --release --arm64 --output-format zip --locked "${packages[@]}"
  say "built in $((SECONDS - start)) s (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"

  printf '%-12s %12s %12s  %s\n' function binary zip file
  for f in "${FUNCTIONS[@]}"; do
    local bin=$CARGO_TARGET_DIR/$TARGET/release/$f zip=$CARGO_TARGET_DIR/lambda/$f/bootstrap.zip
    [ -f "$bin" ] && [ -f "$zip" ] || die "$f: $bin or $zip missing"
    local kind
    kind=$(file -b "$bin")
    case $kind in
      *"ELF 64-bit LSB"*"ARM aarch64"*) ;;
      *) die "$f is not an aarch64 ELF binary: $kind" ;;
    esac
    printf '%-12s %12s %12s  %s\n' "$f" "$(stat -c %s "$bin")" "$(stat -c %s "$zip")" "$kind"
  done
}

case ${1:-} in
  "") install_tools && build ;;
  --tools) install_tools ;;
  *) die "usage: local/build-arm64.sh [--tools]" ;;
esac
