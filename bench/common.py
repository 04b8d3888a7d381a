"""Shared pieces of the benchmarks: throwaway databases and a real `mot serve` process."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from app import migrate
from app.smoke import wait_until_ready

MOT = str(Path(sys.executable).with_name("mot"))
DEFAULT_POSTGRES_URL = os.environ.get(
    "MOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# The checkout these scripts belong to: the processes they start import its `app`, not
# whichever copy the `mot` executable was installed from.
SOURCE_ROOT = str(Path(__file__).resolve().parents[1])


def child_environment(**values: str) -> dict[str, str]:
    """The environment for a `mot` command run on this checkout's code, plus `values`."""
    paths = [SOURCE_ROOT, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **values}


@contextmanager
def fresh_database(
    backend: str, *, postgres_url: str, name: str, keep: bool = False
) -> Iterator[str]:
    """An empty database migrated to head, removed afterwards unless `keep`; yields its URL."""
    if backend == "sqlite":
        directory = tempfile.mkdtemp(prefix="mot-bench-")
        url = f"sqlite:///{directory}/{name}.db"
        try:
            migrate.upgrade(url)
            yield url
        finally:
            if not keep:
                shutil.rmtree(directory, ignore_errors=True)
        return
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    url = database_url(postgres_url, name)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        if not keep:
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def database_url(postgres_url: str, name: str) -> str:
    """The URL of database `name` on the server of `postgres_url`."""
    return make_url(postgres_url).set(database=name).render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# The admin key a benchmarked service creates on its fresh database; requests carry it.
BENCH_KEY = "mot_bench-admin-key-not-a-secret-0123456789"
AUTH = {"Authorization": f"Bearer {BENCH_KEY}"}


@dataclass(frozen=True, slots=True)
class Service:
    """A running `mot serve`: where to reach it, and its process."""

    url: str
    pid: int


@contextmanager
def running_service(
    database_url: str, *, workers: int, environment: dict[str, str] | None = None
) -> Iterator[Service]:
    """`mot serve` on a free port with the given database (and any further `MOT_*`
    settings in `environment`)."""
    port = free_port()
    settings = {
        "MOT_DATABASE_URL": database_url,
        "MOT_LOG_LEVEL": "warning",
        "MOT_BOOTSTRAP_API_KEY": BENCH_KEY,
        **(environment or {}),
    }
    env = child_environment(**settings)
    process = subprocess.Popen(
        [MOT, "serve", "--port", str(port), "--workers", str(workers), "--no-migrate"], env=env
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, seconds=120, timeout=1)
        yield Service(base_url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)


@dataclass(frozen=True, slots=True)
class ProcessMemory:
    pid: int
    role: str
    rss_mib: float
    """Resident now."""
    peak_mib: float
    """The most it was resident (VmHWM)."""

    def __str__(self) -> str:
        return (
            f"{self.role} pid {self.pid}: RSS {self.rss_mib:.0f} MiB (peak {self.peak_mib:.0f} MiB)"
        )


def _status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


def worker_pids(pid: int) -> list[int]:
    """The children of `pid` but multiprocessing's resource tracker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if _status(int(entry.name)).get("PPid") != str(pid):
                continue
            if b"resource_tracker" not in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone meanwhile
            continue
    return sorted(found)


def server_memory(pid: int) -> list[ProcessMemory]:
    """Memory of a `mot serve` process and of its children (Linux /proc): with several
    workers the first is the supervisor and the children serve; with one it serves itself."""

    def mib(fields: dict[str, str], name: str) -> float:
        return int(fields.get(name, "0 kB").split()[0]) / 1024

    children = worker_pids(pid)
    found = []
    for process, role in [(pid, "supervisor" if children else "server")] + [
        (child, "worker") for child in children
    ]:
        try:
            fields = _status(process)
        except OSError:
            continue
        found.append(ProcessMemory(process, role, mib(fields, "VmRSS"), mib(fields, "VmHWM")))
    return found


def print_server_memory(pid: int) -> None:
    for process in server_memory(pid):
        print(f"  {process}")
