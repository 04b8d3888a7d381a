"""Schemathesis generates requests from the service's own OpenAPI schema and sends them to a
real `mot serve` over a socket: no request may cause a 500 and every response must match
the schema (status codes, content types, bodies)."""

import os
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import positive_data_acceptance

from app.config import Settings
from app.main import create_app
from app.smoke import wait_until_ready
from tests.conftest import EmptyDatabases
from tests.test_cli import ADMIN_KEY, MOT, _free_port


@pytest.fixture(scope="module")
def fuzzed_url(
    databases: EmptyDatabases, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One server per backend for the whole run: state the requests leave (moments,
    touchpoints, follow-ups) makes later requests reach deeper."""
    database_url = databases.create(template=template_url)
    port = _free_port()
    log_path = tmp_path_factory.mktemp("fuzz") / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [MOT, "serve", "--port", str(port)],
            env={
                **os.environ,
                "MOT_DATABASE_URL": database_url,
                "MOT_BOOTSTRAP_API_KEY": ADMIN_KEY,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(base_url, seconds=30, timeout=1)
            yield base_url
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    server_errors = [line for line in log_path.read_text().splitlines() if "Traceback" in line]
    assert not server_errors, log_path.read_text()
    databases.drop(database_url)


# The schema is the one the service publishes; building the app needs no database.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(_env_file=None, database_url="sqlite://")).openapi()
)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_generated_request_breaks_the_service(case: Case[Any], fuzzed_url: str) -> None:
    case.call_and_validate(
        base_url=fuzzed_url,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        # Requests of the right shape may still be refused on meaning, by design and with a
        # documented 422: an opaque cursor that is not ours, a value outside its scale, a
        # timestamp in the future, an empty window.
        excluded_checks=[positive_data_acceptance],
    )
