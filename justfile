# Baton's tasks: every command a person or CI runs. `./dev.sh <recipe>` installs the
# tools first (scripts/setup.sh); `just <recipe>` runs a recipe directly.
# Builds use -j2: the machines this project runs on have 2 cores.

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

# Each binding keeps its recipes in just/<binding>.just, with at least `test-<binding>`
# (its own tests, then its parity run). `test` runs every one that exists.
import? 'just/python.just'
import? 'just/node.just'
import? 'just/go.just'
import? 'just/wasm.just'
import? 'just/codecs.just'
import? 'just/otel.just'
import? 'just/observability.just'

# Debian's Rust toolchain for wasm (installed by `scripts/setup.sh --wasm`).
debian_cargo := "/usr/bin/cargo"
debian_rustc := "/usr/bin/rustc"

# List the recipes
default:
    @"{{ just_executable() }}" --justfile "{{ justfile() }}" --list --unsorted

# Build every crate of the workspace (debug)
build:
    cargo build --workspace -j2

# Format all Rust code in place
fmt:
    cargo fmt --all

# Check formatting, run clippy with warnings denied, and ruff on tests/parity
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -j2 -- -D warnings
    cargo clippy -p baton-wasm --features host-lint --all-targets -j2 -- -D warnings
    @if [[ ! -d tests/parity ]]; then \
        echo "lint: no tests/parity, skipping ruff"; \
    elif python3 -m ruff --version >/dev/null 2>&1; then \
        echo "python3 -m ruff check tests/parity scripts"; python3 -m ruff check tests/parity scripts; \
    elif command -v ruff >/dev/null 2>&1; then \
        echo "ruff check tests/parity scripts"; ruff check tests/parity scripts; \
    else \
        echo "lint: ruff is not installed, skipping it (scripts/setup.sh installs it)"; \
    fi

# Run the Rust tests of the whole workspace
test-rust:
    cargo test --workspace -j2

# Run the parity suite (args go to tests/parity/driver.py, e.g. `just parity --bindings rust`)
parity *ARGS:
    cargo build --release -j2 -p baton-parity-rust
    python3 tests/parity/driver.py "$@"

# Rewrite the parity suite's expected outputs from the current build
parity-bless:
    cargo build --release -j2 -p baton-parity-rust
    python3 tests/parity/driver.py --bless

# Run the parity driver's own unit tests
test-driver:
    python3 -m pytest -q tests/parity/test_driver.py

# Build the core crate for wasm32-unknown-unknown with Debian's Rust (std built from source)
wasm-check:
    #!/usr/bin/env bash
    set -euo pipefail
    for tool in "{{ debian_cargo }}" "{{ debian_rustc }}"; do
        if [[ ! -x $tool ]]; then
            echo "wasm-check: $tool is missing; run: scripts/setup.sh --wasm" >&2
            exit 1
        fi
    done
    env RUSTC="{{ debian_rustc }}" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$PWD/target-wasm" \
        "{{ debian_cargo }}" build --release -p baton -Zbuild-std=std,panic_abort \
        --target wasm32-unknown-unknown -j2

# Run every check, in order, stopping at the first failure (what CI runs)
# (parity runs last so its `parity: N passed, N failed` line closes the output)
test: lint test-rust test-driver wasm-check test-bindings parity

# Run each binding's own tests (the `test-<binding>` recipes of just/*.just)
test-bindings:
    #!/usr/bin/env bash
    set -euo pipefail
    for f in just/*.just; do
        [[ -e $f ]] || continue
        b=$(basename "$f" .just)
        echo "== test-$b"
        "{{ just_executable() }}" --justfile "{{ justfile() }}" "test-$b"
    done

# Run the demo; it writes its output under out/demo (args go to the demo)
demo *ARGS:
    cargo run --release -j2 -p baton-demo -- --out out/demo "$@"

# Run the criterion benchmarks of the core, then print the table of medians (docs/performance.md)
bench:
    cargo bench -p baton -j2 --bench runtime -- --noplot
    python3 scripts/bench_report.py

# Remove the out/ folder (demo output and reports)
clean-out:
    rm -rf out
