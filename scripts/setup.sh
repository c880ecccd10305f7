#!/usr/bin/env bash
# scripts/setup.sh [--wasm] [--bindings] [--quiet]
#
# Installs the tools Baton's justfile needs, skipping whatever is already there, so a
# second run installs nothing and takes well under 2 s. Expects rustup's stable Rust,
# Python 3 with pip and (for --wasm) Debian's apt. See docs/development.md.
#
#   just                    pip: rust-just (a wheel that ships the just binary), unless `just` runs
#   ruff, pytest            pip, unless importable by python3
#   rustfmt, clippy         rustup component add, unless installed
#   --bindings: every scripts/setup.d/<binding>.sh (each binding installs its own tools)
#   --wasm: rustc-web cargo-web rust-web-src lld-22
#                           apt-get (Debian's Rust 1.96 with std source: /usr/bin/cargo, /usr/bin/rustc)
#
# --quiet prints only what gets installed (and errors).
set -euo pipefail

JUST_PIP_SPEC='rust-just==1.59.0'
RUFF_PIP_SPEC='ruff==0.8.*'
PYTEST_PIP_SPEC='pytest'
WASM_DEBS=(rustc-web cargo-web rust-web-src lld-22)

wasm=0
bindings=0
quiet=0
for arg in "$@"; do
  case $arg in
    --wasm) wasm=1 ;;
    --bindings) bindings=1 ;;
    --quiet) quiet=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "setup: unknown option '$arg' (use --wasm, --bindings, --quiet)" >&2; exit 2 ;;
  esac
done

ok() { if [[ $quiet == 0 ]]; then echo "setup: ok       $*"; fi; }
installing() { echo "setup: install  $*"; }
installed_ok() { echo "setup: ok       $*"; } # printed even with --quiet
die() { echo "setup: ERROR: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"

command -v python3 >/dev/null 2>&1 || die "python3 not found; install Python 3.11+ with pip first"
command -v cargo >/dev/null 2>&1 || die "cargo not found; install Rust with rustup (stable) first"

# --- pip ---------------------------------------------------------------------
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

pip_install() { # pip_install SPEC...
  installing "$* (pip)"
  local log
  log=$(mktemp)
  if ! python3 -m pip install --quiet "$@" >"$log" 2>&1; then
    if grep -q externally-managed-environment "$log"; then
      # A distribution's Python (PEP 668): install for this user instead.
      echo "setup: python3 is externally managed; retrying as a --user install" >&2
      if ! python3 -m pip install --quiet --user --break-system-packages "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "pip install $* failed (see above)"
      fi
    else
      cat "$log" >&2
      rm -f "$log"
      die "pip install $* failed (see above)"
    fi
  fi
  rm -f "$log"
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
  source "$ROOT/scripts/env.sh" # a --user install may have created ~/.local/bin
  hash -r
}

# just: any working `just` on PATH will do. Run it rather than only `command -v`: a
# pyenv shim exists for every version's scripts and fails for the current one.
if just --version >/dev/null 2>&1; then
  ok "$(just --version)"
else
  python3 -m pip --version >/dev/null 2>&1 || die "pip is missing for python3 (try: python3 -m ensurepip)"
  pip_install "$JUST_PIP_SPEC"
  just --version >/dev/null 2>&1 ||
    die "installed $JUST_PIP_SPEC but \`just\` does not run; is Python's scripts folder on PATH?"
  installed_ok "$(just --version) at $(command -v just)"
fi

# ruff and pytest: one python3 start to check both (ruff is a module too: python3 -m ruff).
py_missing=$(python3 - <<'PY'
import importlib.util
print(" ".join(m for m in ("ruff", "pytest") if importlib.util.find_spec(m) is None))
PY
)
to_install=()
for mod in $py_missing; do
  case $mod in
    ruff) to_install+=("$RUFF_PIP_SPEC") ;;
    pytest) to_install+=("$PYTEST_PIP_SPEC") ;;
  esac
done
if ((${#to_install[@]})); then
  pip_install "${to_install[@]}"
fi
ok "ruff, pytest"

# --- rustup components ---------------------------------------------------------
if command -v rustup >/dev/null 2>&1; then
  installed=$(rustup component list --installed)
  missing=()
  for comp in rustfmt clippy; do
    grep -q "^$comp" <<<"$installed" || missing+=("$comp")
  done
  if ((${#missing[@]})); then
    installing "${missing[*]} (rustup component add)"
    rustup component add "${missing[@]}" || die "rustup component add ${missing[*]} failed"
  fi
  ok "rustfmt, clippy"
else
  cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1 ||
    die "rustup not found and cargo fmt/clippy are missing; install them with your Rust toolchain"
  ok "rustfmt, clippy (no rustup)"
fi

# --- wasm: Debian's Rust toolchain (see shared TOOLCHAIN.md) ---------------------
if [[ $wasm == 1 ]]; then
  missing=()
  for deb in "${WASM_DEBS[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$deb" 2>/dev/null || true) == installed ]] ||
      missing+=("$deb")
  done
  if ((${#missing[@]})); then
    command -v apt-get >/dev/null 2>&1 ||
      die "the wasm build needs Debian packages ${missing[*]}, but apt-get is not available"
    [[ $(id -u) == 0 ]] ||
      die "the wasm build needs Debian packages ${missing[*]}; apt-get needs root. As root run:
    apt-get update && apt-get install -y ${missing[*]}"
    installing "${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq "${missing[@]}" </dev/null ||
      die "apt-get install ${missing[*]} failed"
  fi
  for tool in /usr/bin/cargo /usr/bin/rustc; do
    [[ -x $tool ]] || die "$tool is missing after installing ${WASM_DEBS[*]}"
  done
  if [[ ${#missing[@]} -gt 0 || $quiet == 0 ]]; then
    installed_ok "wasm toolchain: $(/usr/bin/rustc --version), $(/usr/bin/cargo --version)"
  fi
fi

# --- bindings: each binding's own setup (scripts/setup.d/<binding>.sh) ---------------
# Sourced, so they can use pip_install, installing, ok, installed_ok and die. Each must be
# idempotent and fast when everything is present.
if [[ $bindings == 1 ]]; then
  for extra in "$ROOT"/scripts/setup.d/*.sh; do
    [[ -e $extra ]] || continue
    # shellcheck source=/dev/null
    source "$extra"
  done
fi
