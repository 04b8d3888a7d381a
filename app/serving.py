"""Serving the API under uvicorn, and stopping it the way orchestrators expect.

SIGTERM stops the service gracefully: it refuses new connections at once, lets requests in
flight finish (up to `GRACEFUL_SHUTDOWN_SECONDS`), then exits with status 0. Two things
uvicorn does not do by itself are added here:

- With one worker, uvicorn re-raises the signal it handled once its graceful shutdown is
  over, so after SIGTERM the process dies of it (status 143): a clean stop looks like a
  crash to whoever watches the exit status.
- With several workers, the supervising process keeps its copy of the listening socket open
  until every worker has finished. Connections made in the meantime wait in a queue nobody
  serves and are reset when it exits, instead of being refused (and retried elsewhere) at
  once.
- A worker outlives a supervisor that is killed (SIGKILL, the OOM killer): it goes on
  serving, unwatched, and holds the port, so the service cannot start again. Workers here
  stop gracefully as soon as their supervisor is gone.
"""

import logging
import multiprocessing
import os
import signal
import sys
import threading
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

APP = "app.main:create_app"
GRACEFUL_SHUTDOWN_SECONDS = 30
WORKER_START_SECONDS = 60
"""How long a worker process may take to answer a health check of the supervisor.

The first check comes as the worker starts. uvicorn's default (5 s) is less than a worker
can take to import the service on a busy or CPU-limited host: the supervisor then kills it
as hung and starts another, just as slow, and the service never comes up. A started worker
answers from a thread of its own, so a long wait only delays noticing a truly stuck one.
"""


logger = logging.getLogger(__name__)


def stop_with_supervisor() -> None:
    """In a worker started by the supervisor, stop gracefully once the supervisor is gone.

    A worker is a spawned `multiprocessing` child, which holds a pipe from its parent that
    only the parent writes to: it reads as closed the moment the parent dies, however it
    died. (Polling `os.getppid()` would miss a parent that died before the poll began, and
    Linux's parent-death signal follows the thread that spawned, not the process.) Outside
    a worker (one process serving, tests) there is no supervisor to follow.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    threading.Thread(
        target=_stop_when_gone, args=(parent,), name="supervisor-watch", daemon=True
    ).start()


def _stop_when_gone(parent: BaseProcess) -> None:
    wait([parent.sentinel])
    logger.warning("the supervising process [%s] is gone: stopping", parent.pid)
    # The signal the supervisor itself would have sent: requests in flight finish first.
    os.kill(os.getpid(), signal.SIGTERM)


class _Supervisor(Multiprocess):
    """uvicorn's worker supervisor, which stops listening before it stops the workers."""

    def terminate_all(self) -> None:
        # Each worker closes its own copy of the socket when told to stop; once this last
        # copy is closed too, new connections are refused.
        for listening in self.sockets:
            listening.close()
        super().terminate_all()


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    # Reached when uvicorn re-raises the signal after its graceful shutdown (this is the
    # handler it found installed and puts back), or when the signal comes before uvicorn
    # serves: either way the stop that was asked for is done.
    sys.exit(0)


def run(*, host: str, port: int, workers: int, log_level: str, log_config: dict[str, Any]) -> None:
    """Serve the API until SIGTERM or SIGINT; exit 3 if it could not start."""
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    config = uvicorn.Config(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=log_config,
        # The service writes its own access line, without paths or query strings.
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_worker_healthcheck=WORKER_START_SECONDS,
    )
    if workers > 1:
        _Supervisor(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
