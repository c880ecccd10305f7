#!/usr/bin/env bash
# ./dev.sh <recipe> [args...] — install what Baton's recipes need (scripts/setup.sh,
# idempotent), then run the justfile recipe. `./dev.sh` alone lists the recipes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

case ${1:-} in
  # Everything that runs bindings or their tests: the wasm toolchain and each binding's setup.
  test | test-* | parity | bench-* | wasm-check) bash scripts/setup.sh --quiet --wasm --bindings ;;
  *) bash scripts/setup.sh --quiet ;;
esac
source scripts/env.sh # PATH for the tools pip installed (just, ruff)
exec just "$@" # no recipe: just's default recipe lists them
