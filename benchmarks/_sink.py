"""A local OTLP sink: accepts traces and metrics, keeps counts, serves them as text.

Stands in for the collector when it is not built. Run as ``python _sink.py GRPC_PORT
HTTP_PORT``; prints ``ready`` once both ports listen (127.0.0.1 only). OTLP/gRPC on the first
port; OTLP/HTTP (protobuf, ``/v1/traces`` and ``/v1/metrics``) and the counts on the second. The
count of accepted spans is served as ``otelcol_receiver_accepted_spans`` on ``/metrics``, the
collector's own name for it.
"""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans = 0
        self.metric_requests = 0


COUNTS = Counts()


def count_spans(request: Any) -> None:
    n = sum(len(s.spans) for rs in request.resource_spans for s in rs.scope_spans)
    with COUNTS.lock:
        COUNTS.spans += n


class Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request: Any, context: Any) -> Any:
        count_spans(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def Export(self, request: Any, context: Any) -> Any:
        with COUNTS.lock:
            COUNTS.metric_requests += 1
        return metrics_service_pb2.ExportMetricsServiceResponse()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        with COUNTS.lock:
            body = (
                f'otelcol_receiver_accepted_spans{{receiver="otlp"}} {COUNTS.spans}\n'
                f"sink_metric_requests {COUNTS.metric_requests}\n"
            ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/v1/traces":
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            count_spans(request)
            reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        elif self.path == "/v1/metrics":
            with COUNTS.lock:
                COUNTS.metric_requests += 1
            reply = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def main() -> None:
    grpc_port, http_port = int(sys.argv[1]), int(sys.argv[2])
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    server.start()
    http = ThreadingHTTPServer(("127.0.0.1", http_port), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    http.shutdown()
    server.stop(1).wait()


if __name__ == "__main__":
    main()
