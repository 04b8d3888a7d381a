"""Schemathesis generates requests from the service's own OpenAPI schema and sends them to a
real `mot serve` over a socket, on SQLite and on PostgreSQL, with every check it has: no
request may cause a 500, every response must match the schema (status codes, content types,
headers, bodies), every schema-valid request must be accepted and every invalid one refused.
One run takes the operations one at a time; a stateful run chains them along the links the
schema implies (a stored touchpoint is read, rated and surveyed; a follow-up opened, moved
and read)."""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case, Response
from schemathesis.checks import CheckFunction, negative_data_rejection, positive_data_acceptance

from app.config import Settings
from app.main import create_app
from tests.conftest import EmptyDatabases
from tests.servers import ADMIN_KEY, Served

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


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
_BY_DESIGN: dict[str, list[CheckFunction]] = {
    "POST /v1/touchpoints/batch": [negative_data_rejection],
}

# Refusals on meaning that the schema cannot say, each a documented 422: a cursor is valid
# only if the service issued it (the schema can say only "a string"); `from` must come
# before `to`, within a bounded length (a relation between two query parameters); a time
# may lie at most an hour ahead of the server clock (a schema has no "now"); a root cause
# comes with a resolving status only; a webhook's host must resolve, and only to public
# addresses (what a name resolves to is the network's to say, not a schema's); an answer's
# factors must be ones its moment offers for its sentiment (the moment's list is data), and
# a moment's factors have unique keys and at most ten per sentiment. A
# schema-valid request refused for any other reason fails `positive_data_acceptance`.
SEMANTIC_REFUSALS = frozenset(
    {
        "invalid_cursor",
        "window",
        "datetime_future",
        "order",
        "address_not_allowed",
        "unresolvable_host",
        "unknown_factor",
        "other_sentiment",
        "duplicate_factor",
        "too_many_factors",
    }
)


def _refused_on_meaning(response: Response) -> bool:
    if response.status_code != 422:
        return False
    try:
        details = response.json().get("details") or []
    except ValueError:
        return False
    return bool(details) and all(detail.get("type") in SEMANTIC_REFUSALS for detail in details)


def _excluded_checks(case: Case[Any], response: Response) -> list[CheckFunction]:
    excluded = list(_BY_DESIGN.get(case.operation.label, []))
    if _refused_on_meaning(response):
        excluded.append(positive_data_acceptance)
    return excluded


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
    response = case.call(base_url=fuzzed_url, headers=HEADERS)
    case.validate_response(
        response,
        headers=HEADERS,
        excluded_checks=_excluded_checks(case, response),
        transport_kwargs={"base_url": fuzzed_url, "headers": HEADERS},
    )


def test_no_sequence_of_linked_requests_breaks_the_service(fuzzed_url: str) -> None:
    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return {"base_url": fuzzed_url, "headers": HEADERS}

        def validate_response(
            self,
            response: Response,
            case: Case[Any],
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(
                response,
                headers=HEADERS,
                excluded_checks=_excluded_checks(case, response),
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )

    Workflow.run(
        settings=settings(
            # Generation only, as schemathesis runs its own: the server's state changes
            # with every run, so a scenario replayed or shrunk would not be the same one.
            phases=[Phase.generate],
            max_examples=20,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
