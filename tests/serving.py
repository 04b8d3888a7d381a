"""A real `mot serve` process on a free port, for the tests that go over a socket."""

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.metrics import MULTIPROCESS_DIRECTORY
from app.smoke import SmokeFailure, wait_until_ready

MOT = str(Path(sys.executable).with_name("mot"))
# The admin key a served process creates on its empty database; clients of it send this.
ADMIN_KEY = "mot_test-admin-key-that-is-long-enough-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_service(
    database_url: str, output: Path, *options: str, bootstrap_key: str | None = ADMIN_KEY
) -> Iterator[str]:
    """`mot serve` with `options`, its stdout and stderr written to `output`; yields its base
    URL once ready, and stops it (SIGTERM, as an orchestrator does) on the way out.

    On an empty database the service's first admin key is `bootstrap_key`, or one it
    generates and prints when that is None."""
    port = free_port()
    env = {**os.environ, "MOT_DATABASE_URL": database_url}
    if bootstrap_key is not None:
        env["MOT_BOOTSTRAP_API_KEY"] = bootstrap_key
    env.pop(MULTIPROCESS_DIRECTORY, None)  # each service chooses its own
    with output.open("w") as log:
        process = subprocess.Popen(
            [MOT, "serve", "--port", str(port), *options],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(base_url, seconds=30, timeout=1)
        except SmokeFailure:
            process.kill()
            process.wait()
            raise AssertionError(output.read_text()) from None
        try:
            yield base_url
        finally:
            process.send_signal(signal.SIGTERM)
            # uvicorn finishes in-flight requests, then re-raises the signal it caught.
            assert process.wait(timeout=30) in (0, -signal.SIGTERM)
