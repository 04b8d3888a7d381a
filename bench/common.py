"""Shared pieces of the benchmarks: throwaway databases and a real `mot serve` process."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from app import migrate
from app.smoke import wait_until_ready

MOT = str(Path(sys.executable).with_name("mot"))
DEFAULT_POSTGRES_URL = os.environ.get(
    "MOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@contextmanager
def fresh_database(backend: str, *, postgres_url: str, name: str) -> Iterator[str]:
    """An empty database migrated to head, removed afterwards; yields its URL."""
    if backend == "sqlite":
        directory = tempfile.mkdtemp(prefix="mot-bench-")
        url = f"sqlite:///{directory}/{name}.db"
        try:
            migrate.upgrade(url)
            yield url
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# The admin key a benchmarked service creates on its fresh database; requests carry it.
BENCH_KEY = "mot_bench-admin-key-not-a-secret-0123456789"
AUTH = {"Authorization": f"Bearer {BENCH_KEY}"}


@contextmanager
def running_service(database_url: str, *, workers: int) -> Iterator[str]:
    """`mot serve` on a free port with the given database; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "MOT_DATABASE_URL": database_url,
        "MOT_LOG_LEVEL": "warning",
        "MOT_BOOTSTRAP_API_KEY": BENCH_KEY,
    }
    process = subprocess.Popen(
        [MOT, "serve", "--port", str(port), "--workers", str(workers), "--no-migrate"], env=env
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, seconds=60, timeout=1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=60)
