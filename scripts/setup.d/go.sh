# shellcheck shell=bash
# Sourced by scripts/setup.sh --bindings: what the C ABI and Go binding need (just/go.just).
# Go: the machine's `go` if present, else Debian's golang-1.19-go; gcc/g++ and valgrind from
# apt when missing. Idempotent: with everything present it only checks.
_go_debs=()
_go_bin=$(command -v go 2>/dev/null || true)
if [[ -z $_go_bin && -x /usr/local/go/bin/go ]]; then _go_bin=/usr/local/go/bin/go; fi
if [[ -z $_go_bin && -x /usr/lib/go-1.19/bin/go ]]; then _go_bin=/usr/lib/go-1.19/bin/go; fi
if [[ -z $_go_bin ]]; then _go_debs+=(golang-1.19-go); fi
if ! command -v valgrind >/dev/null 2>&1; then _go_debs+=(valgrind); fi
if ! command -v gcc >/dev/null 2>&1; then _go_debs+=(gcc); fi
if ! command -v g++ >/dev/null 2>&1; then _go_debs+=(g++); fi
if ((${#_go_debs[@]})); then
  command -v apt-get >/dev/null 2>&1 || die "the Go binding needs ${_go_debs[*]}, but apt-get is not available"
  [[ $(id -u) == 0 ]] || die "the Go binding needs Debian packages ${_go_debs[*]}; as root run: apt-get update && apt-get install -y ${_go_debs[*]}"
  installing "${_go_debs[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq "${_go_debs[@]}" </dev/null || die "apt-get install ${_go_debs[*]} failed"
  if [[ -z $_go_bin ]]; then _go_bin=/usr/lib/go-1.19/bin/go; fi
  installed_ok "Go binding tools: ${_go_debs[*]}"
fi
[[ -x $_go_bin ]] || die "go not found (looked on PATH, /usr/local/go/bin, /usr/lib/go-1.19/bin)"
ok "go ($("$_go_bin" env GOVERSION)), gcc, g++, valgrind"
unset _go_debs _go_bin
