# shellcheck shell=bash
# Sourced by scripts/setup.sh --bindings: the Python binding's tools, in a venv at .venv/
# (maturin to build baton._native, pytest and mypy for the tests, ruff for lint).
# Idempotent: a second run checks one stamp file and returns.

BATON_PY_VENV="$ROOT/.venv"
BATON_PY_TOOLS='maturin==1.16.0 pytest==8.* mypy==1.* ruff==0.8.*'

_baton_py_stamp="$BATON_PY_VENV/.baton-tools"
if [[ -x $BATON_PY_VENV/bin/python && -f $_baton_py_stamp && $(cat "$_baton_py_stamp") == "$BATON_PY_TOOLS" ]]; then
  ok "python binding: $BATON_PY_VENV (maturin, pytest, mypy, ruff)"
else
  if [[ ! -x $BATON_PY_VENV/bin/python ]]; then
    installing "python venv at $BATON_PY_VENV"
    python3 -m venv "$BATON_PY_VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  fi
  installing "$BATON_PY_TOOLS (pip, into .venv)"
  # shellcheck disable=SC2086
  "$BATON_PY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check $BATON_PY_TOOLS ||
    die "pip install into $BATON_PY_VENV failed"
  echo "$BATON_PY_TOOLS" >"$_baton_py_stamp"
  installed_ok "python binding tools in $BATON_PY_VENV"
fi
unset _baton_py_stamp
