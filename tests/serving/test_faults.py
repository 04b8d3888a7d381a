"""`mot serve` when things go wrong around it: a failing route, a database outage, a killed
supervisor, instances started together on an empty database.

Each test runs real processes over real sockets, as an orchestrator and the clients of a
production service would see them.
"""

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import sync_url
from app.main import create_app
from tests.conftest import POSTGRES_URL
from tests.servers import Served, free_port

pytestmark = pytest.mark.slow

EXITED_WITHIN = 15.0


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


@contextmanager
def _served_in_this_process(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn on a real socket, in a thread of the test; its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), lifespan="off", log_config=None)
    )
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "uvicorn could not start"
            assert time.monotonic() < deadline, "uvicorn never started"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_route_failing_on_a_bug_closes_the_kept_alive_connection_cleanly(
    tmp_path: Path,
) -> None:
    # Not a database error (those are answered by a handler of their own) but any other:
    # the server sees it after the 500 is sent.
    app = create_app(Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'mot.db'}"))

    async def fail() -> None:
        raise RuntimeError("a fault no route expects")

    app.add_api_route("/failing", fail)
    with _served_in_this_process(app) as base_url, httpx.Client(base_url=base_url) as http:
        for _ in range(20):
            failed = http.get("/failing")
            assert failed.status_code == 500
            assert failed.json()["code"] == "internal_error"
            assert failed.headers["connection"] == "close"
            assert http.get("/healthz").status_code == 200


# --- a database outage ---


@contextmanager
def _refusing_connections(database_url: str) -> Iterator[None]:
    """The database refuses new sessions and its open ones are ended, as in an outage."""
    name = make_url(database_url).database
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [name],
            )
            yield
        finally:
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")


def test_a_database_outage_answers_503_with_retry_after_until_it_is_over(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("a SQLite file cannot refuse its own process (see test_errors_and_health)")
    with Served(database_url, tmp_path / "serve.log") as server, server.client() as http:
        assert http.get("/v1/moments").status_code == 200
        with _refusing_connections(database_url):
            for path in ("/v1/moments", "/v1/insights/overview"):
                answer = http.get(path)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.json()["code"] == "database_unavailable"
                assert int(answer.headers["retry-after"]) > 0
            assert http.get("/readyz").status_code == 503
            assert http.get("/healthz").status_code == 200
        assert http.get("/v1/moments").status_code == 200
        assert "internal_error" not in server.log


# --- a supervisor killed ---


def _process_exists(pid: int) -> bool:
    """Whether the process is still there (a zombie waiting to be reaped has exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _workers_of(supervisor: int) -> list[int]:
    """The worker processes the supervisor started (not its resource tracker)."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if parent == supervisor and b"spawn_main" in command:
            workers.append(int(entry.name))
    return workers


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_workers_exit_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    # Supervision knows no database: one backend (a file of its own) is enough.
    server = Served(f"sqlite:///{tmp_path / 'mot.db'}", tmp_path / "serve.log", workers=2)
    server.start()
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(workers := _workers_of(server.pid)) < 2:
            assert time.monotonic() < deadline, f"workers never started\n{server.log}"
            time.sleep(0.1)
        # The supervisor alone, as the OOM killer or `kill -9` of its pid would.
        assert server.process is not None
        os.kill(server.pid, signal.SIGKILL)
        server.process.wait()
        server.process = None

        deadline = time.monotonic() + EXITED_WITHIN
        while any(_process_exists(worker) for worker in workers):
            assert time.monotonic() < deadline, f"workers outlived the supervisor\n{server.log}"
            time.sleep(0.1)
        # Nothing holds the port any more: the service starts again on it at once.
        server.start()
        with server.client() as http:
            assert http.get("/v1/moments").status_code == 200
        assert server.terminate() == 0
    finally:
        for worker in workers:
            if _process_exists(worker):
                os.kill(worker, signal.SIGKILL)
        if server.process is not None:
            server.kill()


# --- instances started together ---


def test_two_instances_started_together_on_an_empty_database_both_serve(
    empty_database_url: str, tmp_path: Path
) -> None:
    # PostgreSQL's replicas are also run together in test_data_path; SQLite's, here.
    servers = [Served(empty_database_url, tmp_path / f"serve{n}.log") for n in range(2)]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_until_ready()
        for server in servers:
            with server.client() as http:
                assert http.get("/v1/moments").status_code == 200
        for server in servers:
            assert server.terminate() == 0, server.log
    finally:
        for server in servers:
            if server.process is not None:
                server.kill()
    logs = [server.log for server in servers]
    # One migrated; the other waited for it, then found the schema current.
    assert [("Running upgrade" in log) for log in logs].count(True) == 1, logs
    for log in logs:
        assert '"level": "ERROR"' not in log, log
