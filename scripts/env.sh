# shellcheck shell=bash
# Sourced by dev.sh and scripts/setup.sh (not run on its own): puts the tools that
# setup installs on PATH for this shell. pip installs `just` and `ruff` into Python's
# scripts folder (or the per-user one, ~/.local/bin), which may not be on PATH yet.
# Folders already on PATH keep their place; /usr/bin is never moved to the front
# (it would swap python3 for Debian's copy).

_baton_path_add() { # _baton_path_add DIR front|back
  [[ -n $1 && -d $1 ]] || return 0
  case ":$PATH:" in *":$1:"*) return 0 ;; esac
  case $1 in /usr/bin | /bin | /usr/sbin | /sbin) return 0 ;; esac
  if [[ $2 == front ]]; then PATH="$1:$PATH"; else PATH="$PATH:$1"; fi
}

if command -v python3 >/dev/null 2>&1; then
  while IFS= read -r _baton_dir; do
    _baton_path_add "$_baton_dir" front
  done < <(python3 -c 'import os, sysconfig
print(sysconfig.get_path("scripts"))
print(sysconfig.get_path("scripts", os.name + "_user"))' 2>/dev/null || true)
  unset _baton_dir
fi
_baton_path_add "${CARGO_HOME:-${HOME:-/root}/.cargo}/bin" back
export PATH
