"""PostgreSQL processes the tests run themselves: a primary with a streaming replica, and
PgBouncer in transaction mode in front of the shared server.

The pair is a cluster of its own, made with initdb, so that replication needs no change
to the configuration of the server the other tests share (whose pg_hba.conf need not
allow replication connections), and so that its WAL carries only what these tests write.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REQUIRE_POSTGRES
from tests.servers import free_port

START_WITHIN = 30.0
# The servers run as this user when the tests run as root: PostgreSQL and PgBouncer refuse
# to run as root.
SERVICE_USER = "postgres"


def _unavailable(message: str) -> None:
    if REQUIRE_POSTGRES:
        pytest.fail(message)
    pytest.skip(message)


def postgres_bin_dir() -> Path | None:
    """Where initdb, pg_ctl and pg_basebackup of the installed PostgreSQL are."""
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidate = Path(found.stdout.strip())
        if found.returncode == 0 and (candidate / "pg_basebackup").is_file():
            return candidate
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    for candidate in reversed(versions):
        if all((candidate / tool).is_file() for tool in ("initdb", "pg_ctl", "pg_basebackup")):
            return candidate
    return None


def _as_service_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SERVICE_USER, "--", *command]


def _run(command: list[str]) -> None:
    done = subprocess.run(_as_service_user(command), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")


@contextmanager
def _service_directory(prefix: str) -> Iterator[Path]:
    # Not under pytest's tmp_path: its parents are private to the user running the tests.
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVICE_USER)
            os.chown(directory, user.pw_uid, user.pw_gid)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _wait_for_connection(url: str) -> None:
    deadline = time.monotonic() + START_WITHIN
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@dataclass(frozen=True, slots=True)
class StreamingPair:
    """A primary and its hot standby, each on its own port, sharing one database `mot`."""

    primary_url: str
    replica_url: str

    def wait_until_replayed(self) -> None:
        """Return once the replica has applied everything the primary had written."""
        self._wait_for_replica("pg_last_wal_replay_lsn()")

    def wait_until_received(self) -> None:
        """Return once the replica has received (not necessarily applied) all of it."""
        self._wait_for_replica("pg_last_wal_receive_lsn()")

    def _wait_for_replica(self, position: str) -> None:
        with psycopg.connect(self.primary_url, autocommit=True) as primary:
            written = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert written is not None
        reached = f"SELECT pg_wal_lsn_diff({position}, %s::pg_lsn) >= 0"
        deadline = time.monotonic() + START_WITHIN
        with psycopg.connect(self.replica_url, autocommit=True) as replica:
            while True:
                caught_up = replica.execute(reached, (written[0],)).fetchone()
                if caught_up is not None and caught_up[0]:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the replica's {position} did not reach the primary's")
                time.sleep(0.02)

    def pause_replay(self) -> None:
        with psycopg.connect(self.replica_url, autocommit=True) as replica:
            replica.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        with psycopg.connect(self.replica_url, autocommit=True) as replica:
            replica.execute("SELECT pg_wal_replay_resume()")


# Durability is of no use to a cluster thrown away after the tests, and costs time. (Commits
# still wait for their WAL to be written, hence sent to the replica at once.)
_FAST_SERVER = "-c fsync=off -c full_page_writes=off"


def _start_server(pg_ctl: Path, data: Path, *, port: int, socket_dir: Path, extra: str) -> None:
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {socket_dir} {_FAST_SERVER} {extra}"
    ).strip()
    _run([str(pg_ctl), "-D", str(data), "-l", f"{data}.log", "-w", "-o", options, "start"])


@contextmanager
def streaming_pair() -> Iterator[StreamingPair]:
    """A new primary and a replica made from it by pg_basebackup, stopped and deleted after."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        _unavailable("PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup) are missing")
        return
    with _service_directory("mot-replication-") as root:
        primary, replica = root / "primary", root / "replica"
        primary_port, replica_port = free_port(), free_port()
        pg_ctl = bin_dir / "pg_ctl"
        # initdb's trust authentication covers replication connections from 127.0.0.1.
        _run([str(bin_dir / "initdb"), "-D", str(primary), "-U", "postgres", "-A", "trust"])
        started: list[Path] = []
        try:
            _start_server(pg_ctl, primary, port=primary_port, socket_dir=root, extra="")
            started.append(primary)
            primary_url = f"postgresql://postgres@127.0.0.1:{primary_port}/mot"
            with psycopg.connect(
                f"postgresql://postgres@127.0.0.1:{primary_port}/postgres", autocommit=True
            ) as connection:
                connection.execute("CREATE DATABASE mot")
            _run(
                [
                    str(bin_dir / "pg_basebackup"),
                    *("-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres"),
                    *("-D", str(replica), "-R", "-X", "stream", "-c", "fast"),
                ]
            )
            _start_server(
                pg_ctl, replica, port=replica_port, socket_dir=root, extra="-c hot_standby=on"
            )
            started.append(replica)
            replica_url = f"postgresql://postgres@127.0.0.1:{replica_port}/mot"
            _wait_for_connection(replica_url)
            yield StreamingPair(primary_url=primary_url, replica_url=replica_url)
        finally:
            for data in reversed(started):
                _run([str(pg_ctl), "-D", str(data), "-m", "immediate", "stop"])


@contextmanager
def pgbouncer(*, server_host: str, server_port: int) -> Iterator[int]:
    """PgBouncer in transaction mode in front of this server (any database); yields its port.

    Every server connection is reset (DISCARD ALL) when a transaction ends, whatever the
    pool mode's default: each transaction finds a server connection that knows nothing of
    the transactions before, as under load, when it is rarely the same one.
    """
    program = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if program is None:
        _unavailable("pgbouncer is not installed")
        return
    with _service_directory("mot-pgbouncer-") as directory:
        port = free_port()
        (directory / "users.txt").write_text('"postgres" ""\n')
        config = directory / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={server_host} port={server_port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {directory / 'users.txt'}\n"
            "pool_mode = transaction\nserver_reset_query_always = 1\n"
            "default_pool_size = 2\nmax_client_conn = 500\n"
            f"logfile = {directory / 'pgbouncer.log'}\n"
        )
        for written in directory.iterdir():
            written.chmod(0o644)
        process = subprocess.Popen(
            _as_service_user([program, str(config)]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_for_connection(f"postgresql://postgres@127.0.0.1:{port}/postgres")
            yield port
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=START_WITHIN)
