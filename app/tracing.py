"""Tracing with OpenTelemetry: a span for every request and every SQL statement.

Optional twice over: the packages come with the `otel` extra (`pip install 'mot[otel]'`),
and nothing is traced unless the standard `OTEL_*` variables ask for it
(`OTEL_TRACES_EXPORTER`, or an `OTEL_EXPORTER_OTLP_ENDPOINT`), and `OTEL_SDK_DISABLED` is
not `true`. The exporters, the sampler and the resource read their own standard variables.

Spans keep no client data, like the logs: a request's span names its route template,
never its path, query string or caller's address (paths and queries carry client refs and
survey tokens); statements are recorded with their placeholders, never their values.
"""

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.trace import Span

logger = logging.getLogger(__name__)

WITHHELD = "(withheld)"
_IDENTIFYING_ATTRIBUTES = (
    # What names the client: the path and query (client refs, survey tokens), the
    # address and port of the caller. Old and current semantic conventions alike.
    "http.target",
    "http.url",
    "url.full",
    "url.path",
    "url.query",
    "net.peer.ip",
    "net.peer.port",
    "client.address",
    "client.port",
)


def configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the standard variables ask for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporter_names(environ)
    return bool(exporters) and exporters != ["none"]


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    named = environ.get("OTEL_TRACES_EXPORTER")
    if named is not None:
        return [name.strip().lower() for name in named.split(",") if name.strip()]
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return ["otlp"] if any(environ.get(name) for name in endpoints) else []


def install(
    app: FastAPI,
    engine: AsyncEngine,
    *,
    environ: Mapping[str, str] = os.environ,
    provider: "TracerProvider | None" = None,
) -> bool:
    """Trace the app's requests and the engine's statements, if the variables ask for it
    and the `otel` extra is installed; whether it does.

    `provider` replaces the one the variables describe (tests pass one that keeps spans
    in memory); one is made, and made the process's own, on the first call otherwise.
    """
    if provider is None and not configured(environ):
        return False
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    except ImportError:
        logger.warning(
            "OTEL_* variables ask for tracing, but the `otel` extra is not installed "
            "(pip install 'mot[otel]'): tracing is off"
        )
        return False
    provider = provider or _process_provider(environ)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        server_request_hook=_withhold_client_data,
        # The spans of each chunk sent and received add nothing a request's span lacks.
        exclude_spans=["receive", "send"],
    )
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine,
        tracer_provider=provider,
        # It declares SQLAlchemy below 2.1 and would refuse ours; the engine events it
        # listens to are unchanged in 2.1, which the tests of this module check.
        skip_dep_check=True,
    )
    return True


def uninstall(app: FastAPI) -> None:
    """Undo `install` (for tests, which build many apps in one process)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    FastAPIInstrumentor.uninstrument_app(app)
    SQLAlchemyInstrumentor().uninstrument()


def _withhold_client_data(span: "Span", _scope: dict[str, Any]) -> None:
    present: Mapping[str, Any] = getattr(span, "attributes", None) or {}
    for name in _IDENTIFYING_ATTRIBUTES:
        if name in present:
            span.set_attribute(name, WITHHELD)


_provider: "TracerProvider | None" = None


def _process_provider(environ: Mapping[str, str]) -> "TracerProvider":
    """The provider the variables describe, made once per process and set as global."""
    global _provider
    if _provider is not None:
        return _provider
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "mot"}))
    provider = TracerProvider(resource=resource)
    # The sampler the variables chose (OTEL_TRACES_SAMPLER), before any tracer takes it.
    provider.sampler = requests_only(provider.sampler)
    for name in _exporter_names(environ):
        exporter = _exporter(name, environ)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def requests_only(delegate: "Sampler") -> "Sampler":
    """`delegate`, except that statements run outside any request are not traced: the
    background loops (folding counts, sending webhooks) poll the database several times a
    second, and their traces would bury those of the requests."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class RequestsOnly(Sampler):
        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: trace.SpanKind | None = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            # The spans of statements come with no attributes yet, but they are the only
            # client spans: the service's own calls (webhooks) are not instrumented.
            parent = trace.get_current_span(parent_context).get_span_context()
            if kind == trace.SpanKind.CLIENT and not parent.is_valid:
                return SamplingResult(Decision.DROP)
            return delegate.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"RequestsOnly{{{delegate.get_description()}}}"

    return RequestsOnly()


def _exporter(name: str, environ: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        if protocol.strip() == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )

            return GrpcExporter()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if name != "none":
        logger.warning("OTEL_TRACES_EXPORTER names %r, which mot does not know: ignored", name)
    return None
