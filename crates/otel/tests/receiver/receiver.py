#!/usr/bin/env python3
"""A small, real OTLP receiver for baton-otel's tests: OTLP/HTTP (protobuf) and OTLP/gRPC.

Decoding uses the official `opentelemetry-proto` Python package (generated from the OTLP
.proto files) and `grpcio`, so what the Rust exporter sends is checked by an independent
implementation of the protocol, over both transports.

    receiver.py [--http-port N] [--grpc-port N]

Prints one JSON line on stdout once both servers listen:
    {"http": <port>, "grpc": <port>}
then serves until stdin closes (the test that spawned it exits) or SIGTERM.

The HTTP port also serves the control API used by the tests:
    GET  /received        -> {"traces": [...], "metrics": [...], "logs": [...]}, each item
                             {"transport": "http"|"grpc", "headers": {...}, "request": {...}}
                             (the request as protobuf JSON with snake_case field names and
                             trace/span ids as lowercase hex)
    POST /control/delay?seconds=S   answer every later export S seconds late (slow receiver)
    POST /control/reset             forget everything received, delay back to 0
"""

from __future__ import annotations

import argparse
import base64
import json
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
RECEIVED: dict[str, list] = {"traces": [], "metrics": [], "logs": []}
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--grpc-port", type=int, default=0)
    args = ap.parse_args()

    http = ThreadingHTTPServer(("127.0.0.1", args.http_port), Http)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    grpc_port = server.add_insecure_port(f"127.0.0.1:{args.grpc_port}")
    server.start()

    print(json.dumps({"http": http.server_address[1], "grpc": grpc_port}), flush=True)
    try:
        sys.stdin.read()  # returns when the parent closes our stdin (or exits)
    except KeyboardInterrupt:
        pass
    server.stop(0)
    http.shutdown()


if __name__ == "__main__":
    main()
