"""Schemathesis generates requests from the service's own OpenAPI schema and sends them to a
real `mot serve` over a socket: no request may cause a 500 and every response must match
the schema (status codes, content types, bodies)."""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from app.config import Settings
from app.main import create_app
from tests.conftest import EmptyDatabases
from tests.servers import ADMIN_KEY, Served


@pytest.fixture(scope="module")
def fuzzed_url(
    databases: EmptyDatabases, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One server per backend for the whole run: state the requests leave (moments,
    touchpoints, follow-ups) makes later requests reach deeper."""
    database_url = databases.create(template=template_url)
    log = tmp_path_factory.mktemp("fuzz") / "serve.log"
    with Served(database_url, log) as server:
        yield server.base_url
    # A refused request is logged as a warning at most; an error is a bug even if the
    # answer looked right.
    errors = [line for line in log.read_text().splitlines() if '"level": "ERROR"' in line]
    assert not errors, "\n".join(errors)
    databases.drop(database_url)


# A batch answers 200 with each refused item reported on its own, so that good items are
# stored: an invalid item is not a refused request.
_BY_DESIGN = {
    "POST /v1/touchpoints/batch": [negative_data_rejection],
}

# The schema is the one the service publishes; building the app needs no database.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(_env_file=None, database_url="sqlite://")).openapi()
)


@schema.parametrize()
@settings(
    max_examples=15,
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
        excluded_checks=[positive_data_acceptance, *_BY_DESIGN.get(case.operation.label, [])],
    )
