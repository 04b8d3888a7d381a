"""`mot serve` as real processes, for tests that need a socket, a signal or a crash."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

import app
from app.metrics import MULTIPROCESS_DIRECTORY

MOT = str(Path(sys.executable).with_name("mot"))
# The tree whose `app` these tests import: the commands they start must run the same code.
SOURCE_ROOT = str(Path(app.__file__).resolve().parent.parent)

# The admin key a served instance creates on its empty database, and every request carries.
ADMIN_KEY = "mot_test-admin-key-that-is-long-enough-0123456789"
AUTH_HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}

# Generous: a busy two-core machine may take several seconds to import and start the app.
READY_WITHIN = 60.0
EXIT_WITHIN = 60.0


def command_environment(database_url: str, **variables: str) -> dict[str, str]:
    """The environment for a `mot` command on this database, running the code under test."""
    path = [SOURCE_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path),
        "MOT_DATABASE_URL": database_url,
        **variables,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Served:
    """`mot serve` on one database and one port: started, killed, stopped and restarted.

    Every start appends to the same log, so a failure can show what each run said. The
    server runs in a session of its own: a kill takes its worker processes down with it,
    as a crash of the machine would.
    """

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        workers: int = 1,
        bootstrap_key: str | None = ADMIN_KEY,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """On an empty database the first admin key is `bootstrap_key`, or one the service
        generates and prints when that is None."""
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.workers = workers
        self.env = command_environment(database_url, **(env or {}))
        self.env.pop(MULTIPROCESS_DIRECTORY, None)  # each service chooses its own
        self.env.pop("MOT_BOOTSTRAP_API_KEY", None)
        if bootstrap_key is not None:
            self.env["MOT_BOOTSTRAP_API_KEY"] = bootstrap_key
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and return once it answers ready."""
        self.launch()
        self.wait_until_ready()

    def launch(self) -> None:
        """Start the server and return at once: several can then start together."""
        assert self.process is None, "already running"
        command = [MOT, "serve", "--port", str(self.port), "--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_until_ready(self) -> None:
        """Return once the launched server answers ready."""
        assert self.process is not None
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"mot serve exited with {self.process.returncode}\n{self.log}")
            try:
                ready = httpx.get(f"{self.base_url}/readyz", headers=AUTH_HEADERS, timeout=2)
                if ready.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"mot serve was not ready within {READY_WITHIN:g} s\n{self.log}")

    @property
    def pid(self) -> int:
        assert self.process is not None, "not running"
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the server and every worker: nothing gets to finish or clean up."""
        assert self.process is not None, "not running"
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=EXIT_WITHIN)
        self.process = None

    def signal_stop(self) -> None:
        """Send SIGTERM, as an orchestrator does to stop a container, and return at once."""
        assert self.process is not None, "not running"
        self.process.send_signal(signal.SIGTERM)

    def wait_for_exit(self) -> int:
        """Wait for the process to end; its exit status."""
        assert self.process is not None, "not running"
        status = self.process.wait(timeout=EXIT_WITHIN)
        self.process = None
        return status

    def terminate(self) -> int:
        """SIGTERM, then wait for the graceful shutdown to end; the exit status."""
        self.signal_stop()
        return self.wait_for_exit()

    def restart(self) -> None:
        """Kill the server, then start it again on the same database and port."""
        self.kill()
        self.start()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, *, timeout: float = 60) -> httpx.Client:
        """An HTTP client for this server that authenticates every request."""
        return httpx.Client(base_url=self.base_url, headers=AUTH_HEADERS, timeout=timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is None:
            return
        if exc_type is not None:
            self.kill()
            return
        status = self.terminate()
        assert status == 0, f"mot serve exited with {status} after SIGTERM\n{self.log}"
