"""A real OTLP/HTTP traces receiver for the tests and bench keep-up: decodes each
request with opentelemetry-proto (as a collector does) and keeps the spans (or,
with keep=False, only counts them and the call spans among them: a bench's
hundreds of thousands of spans).

No collector is packaged where this project installs from, so this stands in:
it answers POST /v1/traces with an ExportTraceServiceResponse, on a free
loopback port, and can be stopped (the receiver-away case) and started again.
"""

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str


@dataclass
class Receiver:
    port: int = 0
    keep_spans: bool = True
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0
    span_count: int = 0
    call_spans: int = 0  # `process <service>`: one a flow
    content_types: set[str] = field(default_factory=set)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.keep(request, self.headers.get("Content-Type", ""))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def keep(self, request: ExportTraceServiceRequest, content_type: str) -> None:
        with self._lock:
            self.requests += 1
            self.content_types.add(content_type)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self.span_count += len(scope_spans.spans)
                    self.call_spans += sum(
                        1 for span in scope_spans.spans if span.name.startswith("process ")
                    )
                if not self.keep_spans:
                    continue
                resource = {a.key: value_of(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            ReceivedSpan(
                                name=span.name,
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_span_id=span.parent_span_id.hex(),
                                kind=span.kind,
                                start_ns=span.start_time_unix_nano,
                                end_ns=span.end_time_unix_nano,
                                status_code=span.status.code,
                                status_message=span.status.message,
                                attributes={a.key: value_of(a.value) for a in span.attributes},
                                resource=resource,
                                scope=scope_spans.scope.name,
                            )
                        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
