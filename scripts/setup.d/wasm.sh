# shellcheck shell=bash
# WebAssembly binding setup (sourced by scripts/setup.sh --bindings). Installs, skipping what
# is there: Debian's Rust 1.96 with its std source and linker (rustc-web cargo-web rust-web-src
# lld-22; the same as `scripts/setup.sh --wasm`), wasm-bindgen-cli 0.2.130 (must equal the `=`
# pin in crates/wasm/Cargo.toml), the npm dev dependencies of wasm/ (binaryen's wasm-opt,
# typescript) from wasm/package-lock.json, and chromium for the browser test.
WASM_BINDGEN_VERSION=0.2.130
# apt-get install PACKAGE... (as root; a clear message otherwise).
wasm_apt() {
  command -v apt-get >/dev/null 2>&1 || die "the wasm binding needs Debian packages $*, but apt-get is not available"
  [[ $(id -u) == 0 ]] || die "the wasm binding needs Debian packages $*; as root run: apt-get update && apt-get install -y $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$@" </dev/null >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq "$@" </dev/null >/dev/null; } || die "apt-get install $* failed"
}
wasm_missing=()
for deb in rustc-web cargo-web rust-web-src lld-22; do
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$deb" 2>/dev/null || true) == installed ]] || wasm_missing+=("$deb")
done
if ((${#wasm_missing[@]})); then
  installing "${wasm_missing[*]} (apt-get: Debian's Rust for wasm32)"
  wasm_apt "${wasm_missing[@]}"
  installed_ok "${wasm_missing[*]}"
fi
for tool in /usr/bin/cargo /usr/bin/rustc /usr/bin/rust-lld; do
  [[ -x $tool ]] || die "the wasm binding needs Debian's Rust toolchain ($tool is missing after installing rustc-web cargo-web rust-web-src lld-22)"
done
if [[ $(wasm-bindgen --version 2>/dev/null) == "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
  ok "wasm-bindgen $WASM_BINDGEN_VERSION"
else
  # No --locked: the CLI's own lock file pins a webpki-roots that is no longer on crates.io.
  installing "wasm-bindgen-cli $WASM_BINDGEN_VERSION (cargo install, ~6 min)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" -j2 --quiet || die "cargo install wasm-bindgen-cli failed"
  installed_ok "wasm-bindgen $WASM_BINDGEN_VERSION"
fi
wasm_dir="$ROOT/wasm"
if [[ ! -f $wasm_dir/node_modules/.package-lock.json || $wasm_dir/package-lock.json -nt $wasm_dir/node_modules/.package-lock.json ]]; then
  installing "wasm/ dev dependencies (npm ci: binaryen, typescript, eslint)"
  (cd "$wasm_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) || die "npm ci in wasm/ failed"
  installed_ok "wasm/ dev dependencies"
else
  ok "wasm/ dev dependencies (binaryen, typescript, eslint)"
fi
if command -v chromium >/dev/null 2>&1; then
  ok "chromium"
else
  installing "chromium (apt-get, ~70 s; browser test only)"
  wasm_apt chromium
  installed_ok "chromium"
fi
