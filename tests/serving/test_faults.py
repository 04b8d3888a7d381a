"""`mot serve` when things go wrong around it.

Each test runs real processes over real sockets, as an orchestrator and the clients of a
production service would see them.
"""

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.db import sync_url
from tests.servers import Served

pytestmark = pytest.mark.slow


def _execute(database_url: str, statement: str) -> None:
    engine = create_engine(sync_url(database_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


# --- a route that fails unexpectedly ---


def test_a_500_closes_the_kept_alive_connection_cleanly(database_url: str, tmp_path: Path) -> None:
    with Served(database_url, tmp_path / "serve.log") as server, server.client() as http:
        assert http.get("/v1/moments").status_code == 200
        # A table gone from under the service: the one failure no route expects.
        _execute(database_url, "ALTER TABLE moment RENAME TO moment_away")
        try:
            for _ in range(20):
                failed = http.get("/v1/moments")
                assert failed.status_code == 500
                assert failed.json()["code"] == "internal_error"
                # Told the connection ends, the client opens a new one for what comes next
                # instead of sending it down a socket the server is closing.
                assert failed.headers["connection"] == "close"
                assert http.get("/healthz").status_code == 200
        finally:
            _execute(database_url, "ALTER TABLE moment_away RENAME TO moment")
        assert http.get("/v1/moments").status_code == 200
