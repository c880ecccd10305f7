#!/usr/bin/env python3
"""A small, real OTLP receiver for baton-otel's tests: OTLP/HTTP (protobuf) and OTLP/gRPC.

Decoding uses the official `opentelemetry-proto` Python package (generated from the OTLP
.proto files) and `grpcio`, so what the Rust exporter sends is checked by an independent
implementation of the protocol, over both transports.

    receiver.py [--http-port N] [--grpc-port N] [--tls DIR]

Prints one JSON line on stdout once both servers listen:
    {"http": <port>, "grpc": <port>, "control": <port>}
then serves until stdin closes (the test that spawned it exits) or SIGTERM.

With --tls DIR the receiver makes a throwaway certificate authority in DIR (ca.pem, with
server.pem/server.key for 127.0.0.1 and localhost signed by it, client.pem/client.key, and an
unrelated other-ca.pem) and serves OTLP/HTTP as HTTPS (Python `ssl`) and OTLP/gRPC with
`grpc.ssl_server_credentials`; the control API then has a plain-HTTP port of its own
("control"), and the JSON line also gives "ca" and "other_ca" (paths). Nothing secret is
committed: the keys are generated at each start (the `cryptography` package).
--require-client-cert (with --tls) makes both servers demand a client certificate signed by ca.pem.

The control port (the HTTP port without --tls) serves the control API used by the tests:
    GET  /received        -> {"traces": [...], "metrics": [...], "logs": [...], "atof": [...]},
                             each OTLP item {"transport": "http"|"grpc", "headers": {...},
                             "request": {...}} (the request as protobuf JSON with snake_case
                             field names and trace/span ids as lowercase hex); each ATOF item
                             {"transport": "http", "headers": {...}, "body": "<text>"}
    POST /control/delay?seconds=S   answer every later export S seconds late (slow receiver)
    POST /control/reset             forget everything received, delay back to 0
The OTLP HTTP port also takes ATOF stream sink posts: POST /atof (any body) is recorded.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import ipaddress
import json
import os
import ssl
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

LOCK = threading.Lock()
RECEIVED: dict[str, list] = {"traces": [], "metrics": [], "logs": [], "atof": []}
DELAY = [0.0]

SIGNALS = {
    "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "/v1/metrics": ("metrics", metrics_service_pb2.ExportMetricsServiceRequest, metrics_service_pb2.ExportMetricsServiceResponse),
    "/v1/logs": ("logs", logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
}
ID_FIELDS = {"trace_id", "span_id", "parent_span_id"}


def hex_ids(node):
    """MessageToDict writes bytes as base64; ids are easier to assert as hex."""
    if isinstance(node, dict):
        return {k: (base64.b64decode(v).hex() if k in ID_FIELDS and isinstance(v, str) else hex_ids(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [hex_ids(v) for v in node]
    return node


def record(signal: str, transport: str, headers: dict, message) -> None:
    as_dict = hex_ids(MessageToDict(message, preserving_proto_field_name=True))
    with LOCK:
        RECEIVED[signal].append({"transport": transport, "headers": headers, "request": as_dict})


def slow_down() -> None:
    delay = DELAY[0]
    if delay > 0:
        time.sleep(delay)


class Http(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if urlparse(self.path).path == "/received":
            with LOCK:
                body = json.dumps(RECEIVED).encode()
            self.reply(200, body, "application/json")
        else:
            self.reply(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        url = urlparse(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if url.path == "/control/delay":
            DELAY[0] = float(parse_qs(url.query).get("seconds", ["0"])[0])
            self.reply(200, b"{}", "application/json")
            return
        if url.path == "/control/reset":
            with LOCK:
                for v in RECEIVED.values():
                    v.clear()
            DELAY[0] = 0.0
            self.reply(200, b"{}", "application/json")
            return
        if url.path == "/atof":
            slow_down()
            with LOCK:
                RECEIVED["atof"].append(
                    {"transport": "http", "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode()}
                )
            self.reply(200, b"{}", "application/json")
            return
        if url.path not in SIGNALS:
            self.reply(404, b"not found", "text/plain")
            return
        if self.headers.get("Content-Type") != "application/x-protobuf":
            self.reply(415, b"expected application/x-protobuf", "text/plain")
            return
        signal, req_type, resp_type = SIGNALS[url.path]
        slow_down()
        req = req_type()
        try:
            req.ParseFromString(body)
        except Exception as e:  # noqa: BLE001 - a bad body is a 400, never a crash
            self.reply(400, str(e).encode(), "text/plain")
            return
        record(signal, "http", {k.lower(): v for k, v in self.headers.items()}, req)
        self.reply(200, resp_type().SerializeToString(), "application/x-protobuf")


def grpc_headers(context) -> dict:
    return {k: v for k, v in context.invocation_metadata()}


class Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        slow_down()
        record("traces", "grpc", grpc_headers(context), request)
        return trace_service_pb2.ExportTraceServiceResponse()


class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def Export(self, request, context):
        slow_down()
        record("metrics", "grpc", grpc_headers(context), request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def Export(self, request, context):
        slow_down()
        record("logs", "grpc", grpc_headers(context), request)
        return logs_service_pb2.ExportLogsServiceResponse()


def make_certs(directory: str) -> dict:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate
    signed by it, and an unrelated CA; PEM files in `directory`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(stem: str, cert, key) -> None:
        with open(os.path.join(directory, f"{stem}.pem"), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(os.path.join(directory, f"{stem}.key"), "wb") as f:
            f.write(
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            )

    def ca(cn: str):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cert, key

    def leaf(cn: str, issuer, issuer_key, usage, sans):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
            )
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return b.sign(issuer_key, hashes.SHA256()), key

    ca_cert, ca_key = ca("baton test CA")
    write("ca", ca_cert, ca_key)
    other_cert, other_key = ca("unrelated test CA")
    write("other-ca", other_cert, other_key)
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    write("server", *leaf("localhost", ca_cert, ca_key, ExtendedKeyUsageOID.SERVER_AUTH, sans))
    write("client", *leaf("baton test client", ca_cert, ca_key, ExtendedKeyUsageOID.CLIENT_AUTH, []))
    return {"ca": os.path.join(directory, "ca.pem"), "other_ca": os.path.join(directory, "other-ca.pem")}


class TlsHttpServer(ThreadingHTTPServer):
    """HTTPS: the handshake runs in the connection's thread, so a client that never completes
    it (or refuses the certificate) cannot stall the accept loop."""

    context: ssl.SSLContext

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address) -> None:
        try:
            request.settimeout(10)
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return  # a client that refused our certificate (or went away): not our problem
        super().finish_request(request, client_address)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--grpc-port", type=int, default=0)
    ap.add_argument("--tls", metavar="DIR", help="serve both transports over TLS with a CA made in DIR")
    ap.add_argument("--require-client-cert", action="store_true", help="with --tls: mutual TLS")
    args = ap.parse_args()

    out: dict = {}
    if args.tls:
        out.update(make_certs(args.tls))
        server_pem = os.path.join(args.tls, "server.pem")
        server_key = os.path.join(args.tls, "server.key")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(server_pem, server_key)
        if args.require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(out["ca"])
        http = TlsHttpServer(("127.0.0.1", args.http_port), Http)
        http.context = ctx
        control = ThreadingHTTPServer(("127.0.0.1", 0), Http)
        control.daemon_threads = True
        threading.Thread(target=control.serve_forever, daemon=True).start()
    else:
        http = ThreadingHTTPServer(("127.0.0.1", args.http_port), Http)
        control = http
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    if args.tls:
        with open(server_key, "rb") as k, open(server_pem, "rb") as c:
            pair = (k.read(), c.read())
        root = None
        if args.require_client_cert:
            with open(out["ca"], "rb") as f:
                root = f.read()
        creds = grpc.ssl_server_credentials([pair], root_certificates=root, require_client_auth=args.require_client_cert)
        grpc_port = server.add_secure_port(f"127.0.0.1:{args.grpc_port}", creds)
    else:
        grpc_port = server.add_insecure_port(f"127.0.0.1:{args.grpc_port}")
    server.start()

    out.update({"http": http.server_address[1], "grpc": grpc_port, "control": control.server_address[1]})
    print(json.dumps(out), flush=True)
    try:
        sys.stdin.read()  # returns when the parent closes our stdin (or exits)
    except KeyboardInterrupt:
        pass
    server.stop(0)
    http.shutdown()
    if control is not http:
        control.shutdown()


if __name__ == "__main__":
    main()
