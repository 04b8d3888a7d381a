"""Tracing: off unless the standard OTEL_* variables ask for it; then a span per request and
per statement, whose ids the log lines carry, and no client data in any span."""

import io
import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind

from app import logs, tracing
from app.config import Settings
from app.keys.schemas import Scope
from app.main import create_app
from tests.conftest import create_key
from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio

CLIENT_REF = "cref-traced-but-never-named"


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced_client(
    database_url: str, exported: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose spans are kept in memory."""
    provider = TracerProvider(sampler=tracing.requests_only(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exported))
    app = create_app(Settings(_env_file=None, database_url=database_url))
    assert tracing.install(app, app.state.database.engine, provider=provider)
    key = await create_key(app.state.database, Scope.admin)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            yield client
    finally:
        tracing.uninstall(app)
        await app.state.database.dispose()


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield output
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


async def test_a_request_is_traced_with_its_statements_and_its_log_lines_carry_the_trace(
    traced_client: httpx.AsyncClient, exported: InMemorySpanExporter, log_output: io.StringIO
) -> None:
    response = await traced_client.get("/v1/moments")
    assert response.status_code == 200, response.text

    spans = exported.get_finished_spans()
    (server,) = [span for span in spans if span.kind == SpanKind.SERVER]
    assert server.name == "GET /v1/moments"
    assert server.attributes is not None
    assert server.attributes.get("http.route") == "/v1/moments"
    statements = [
        span
        for span in spans
        if span.instrumentation_scope is not None
        and span.instrumentation_scope.name == "opentelemetry.instrumentation.sqlalchemy"
    ]
    assert statements, [span.name for span in spans]
    assert server.context is not None
    trace_id = server.context.trace_id
    assert all(
        span.context is not None and span.context.trace_id == trace_id for span in statements
    )
    assert all(span.parent is not None for span in statements)

    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    (access,) = [line for line in lines if line["logger"] == "app.access"]
    assert access["trace_id"] == format(trace_id, "032x")
    assert len(access["span_id"]) == 16


async def test_spans_never_name_the_client(
    traced_client: httpx.AsyncClient, exported: InMemorySpanExporter
) -> None:
    stored = touchpoint(id="t-traced", client_ref=CLIENT_REF)
    assert (await traced_client.post("/v1/touchpoints", json=stored)).status_code == 201
    journey = await traced_client.get(
        f"/v1/clients/{CLIENT_REF}/journey", params={"client": CLIENT_REF}
    )
    assert journey.status_code == 200, journey.text
    spans = exported.get_finished_spans()
    assert any(span.name == "GET /v1/clients/{client_ref}/journey" for span in spans)
    for span in spans:
        recorded = json.dumps({"name": span.name, "attributes": dict(span.attributes or {})})
        assert CLIENT_REF not in recorded, recorded
    # The caller's address (the test client's is 127.0.0.1) is withheld too.
    for span in spans:
        if span.kind == SpanKind.SERVER:
            assert "127.0.0.1" not in json.dumps(dict(span.attributes or {}))


def test_log_lines_outside_a_span_carry_no_trace() -> None:
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "hello", None, None)
    line = json.loads(logs.JsonFormatter().format(record))
    assert "trace_id" not in line
    assert "span_id" not in line


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "mot"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "false"}, True),
    ],
)
def test_tracing_is_on_only_when_the_standard_variables_ask_for_it(
    environ: dict[str, str], expected: bool
) -> None:
    assert tracing.configured(environ) is expected


async def test_an_app_without_otel_variables_is_not_instrumented(database_url: str) -> None:
    app = create_app(Settings(_env_file=None, database_url=database_url))
    try:
        assert not tracing.install(app, app.state.database.engine, environ={})
        assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    finally:
        await app.state.database.dispose()


async def test_variables_asking_for_tracing_without_the_extra_say_so(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # What an installation without the `otel` extra finds: no instrumentation to import.
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.fastapi", None)
    app = create_app(Settings(_env_file=None, database_url=database_url))
    try:
        with caplog.at_level(logging.WARNING, logger="app.tracing"):
            installed = tracing.install(
                app, app.state.database.engine, environ={"OTEL_TRACES_EXPORTER": "console"}
            )
        assert not installed
        assert "mot[otel]" in caplog.text
    finally:
        await app.state.database.dispose()
