# Sourced by scripts/setup.sh --bindings: a venv with the external ATIF/ATOF validators used by
# `just test-observability` (see shared TOOLCHAIN.md for why harbor installs with --no-deps).
VALIDATORS_VENV="$ROOT/.venv-validators"
if [[ -x $VALIDATORS_VENV/bin/python ]] && "$VALIDATORS_VENV/bin/python" -c "import harbor.utils.trajectory_validator, atif, nat.atof, pytest" 2>/dev/null; then
  ok "validators venv (harbor, atif, nvidia-nat-atif)"
else
  installing "validators venv at .venv-validators (harbor, atif==1.8.0, nvidia-nat-atif==1.9.0)"
  python3 -m venv "$VALIDATORS_VENV" || die "cannot create $VALIDATORS_VENV"
  "$VALIDATORS_VENV/bin/python" -m pip install --quiet "pydantic>=2.12" "atif==1.8.0" "nvidia-nat-atif==1.9.0" pytest ||
    die "pip install of the validators failed"
  "$VALIDATORS_VENV/bin/python" -m pip install --quiet --no-deps --ignore-requires-python harbor ||
    die "pip install harbor failed"
  "$VALIDATORS_VENV/bin/python" -c "import harbor.utils.trajectory_validator, atif, nat.atof" ||
    die "the validators do not import"
  installed_ok "validators venv"
fi
