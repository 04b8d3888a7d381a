"""A real HTTP receiver of webhooks, on 127.0.0.1."""

import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Receiver:
    url: str
    port: int = 0
    failures_left: int = 0
    delay: float = 0.0
    """Seconds the receiver takes to answer each notification."""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@contextmanager
def _serving(tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (the name http.server calls)
            body = self.rfile.read(int(self.headers["content-length"]))
            time.sleep(state.delay)
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            failing = state.failures_left > 0
            state.failures_left -= 1
            if failing:
                # What an internal API might answer: it must never be stored or shown.
                answer = b"database password is hunter2"
                self.send_response(500)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            else:
                self.send_response(204)
                self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    state.port = server.server_address[1]
    state.url = f"{'https' if tls else 'http'}://127.0.0.1:{state.port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with _serving() as state:
        yield state


@dataclass
class Certificate:
    """A self-signed certificate: the receiver's, and the only one its senders trust."""

    name: str
    path: Path

    def trusted(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.path)


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a certificate")
    name = "localhost"
    path = tmp_path / "receiver.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(path), "-out", str(path), "-subj", f"/CN={name}"]
        + ["-addext", f"subjectAltName=DNS:{name}"],
        check=True,
        capture_output=True,
    )
    return Certificate(name, path)


@pytest.fixture
def tls_receiver(certificate: Certificate) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 answering HTTPS as `localhost` only."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.path)
    with _serving(context) as state:
        yield state
