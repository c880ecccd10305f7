# shellcheck shell=bash
# Sourced by scripts/setup.sh --bindings: the test OTLP receiver of crates/otel (baton-otel),
# a venv at crates/otel/tests/receiver/.venv with the official OTLP protobuf package and
# grpcio (tests/receiver/receiver.py serves OTLP/HTTP and OTLP/gRPC with them), and
# cryptography (its --tls mode makes a throwaway CA and server certificate at each start).
# Idempotent: a second run checks one stamp file and returns.

BATON_OTEL_VENV="$ROOT/crates/otel/tests/receiver/.venv"
BATON_OTEL_TOOLS='opentelemetry-proto==1.45.2 grpcio==1.85.1 cryptography==50.0.2'

_baton_otel_stamp="$BATON_OTEL_VENV/.baton-tools"
if [[ -x $BATON_OTEL_VENV/bin/python && -f $_baton_otel_stamp && $(cat "$_baton_otel_stamp") == "$BATON_OTEL_TOOLS" ]]; then
  ok "otel receiver: $BATON_OTEL_VENV (opentelemetry-proto, grpcio, cryptography)"
else
  if [[ ! -x $BATON_OTEL_VENV/bin/python ]]; then
    installing "python venv at $BATON_OTEL_VENV (OTLP test receiver)"
    python3 -m venv "$BATON_OTEL_VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  fi
  installing "$BATON_OTEL_TOOLS (pip, into the OTLP receiver venv)"
  # shellcheck disable=SC2086
  "$BATON_OTEL_VENV/bin/python" -m pip install --quiet --disable-pip-version-check $BATON_OTEL_TOOLS ||
    die "pip install into $BATON_OTEL_VENV failed"
  "$BATON_OTEL_VENV/bin/python" -c 'import grpc, cryptography.x509, opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc' ||
    die "the OTLP receiver's packages do not import in $BATON_OTEL_VENV"
  echo "$BATON_OTEL_TOOLS" >"$_baton_otel_stamp"
  installed_ok "OTLP test receiver tools in $BATON_OTEL_VENV"
fi
unset _baton_otel_stamp
