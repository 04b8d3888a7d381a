"""SIGTERM stops `mot serve` without losing the request it is in the middle of."""

import http.client
import json
import socket
import time
from pathlib import Path

import pytest

from tests.payloads import touchpoint
from tests.servers import AUTH_HEADERS, EXIT_WITHIN, Served
from tests.serving.stored import stored_ids

pytestmark = pytest.mark.slow


def _head(port: int, length: int) -> bytes:
    # Expect: 100-continue makes the server say when the handler starts reading the body,
    # which is how the test knows the request is being served before it sends the signal.
    lines = [
        "POST /v1/touchpoints/batch HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        "Expect: 100-continue",
        *(f"{name}: {value}" for name, value in AUTH_HEADERS.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_interim_answer(connection: socket.socket) -> bytes:
    """Read up to the end of a header block; the server sends nothing after it unasked."""
    received = b""
    while not received.endswith(b"\r\n\r\n"):
        chunk = connection.recv(1)
        assert chunk, f"connection closed after {received!r}"
        received += chunk
    return received


def _wait_until_refused(port: int) -> None:
    deadline = time.monotonic() + EXIT_WITHIN
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.05)
    raise AssertionError(f"port {port} still took connections {EXIT_WITHIN:g} s after SIGTERM")


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_finishes_the_request_in_flight_and_refuses_new_connections(
    database_url: str, tmp_path: Path, workers: int
) -> None:
    server = Served(database_url, tmp_path / "serve.log", workers=workers)
    server.start()
    items = [touchpoint(id=f"term-{i:03d}", client_ref=f"c-{i}") for i in range(50)]
    body = json.dumps({"touchpoints": items}).encode()
    half = len(body) // 2
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=EXIT_WITHIN) as conn:
            conn.sendall(_head(server.port, len(body)))
            assert _read_interim_answer(conn).startswith(b"HTTP/1.1 100 ")
            conn.sendall(body[:half])

            server.signal_stop()
            _wait_until_refused(server.port)
            conn.sendall(body[half:])

            response = http.client.HTTPResponse(conn)
            response.begin()
            answer = response.read()
    except BaseException:
        server.kill()
        raise
    assert response.status == 200, answer
    result = json.loads(answer)
    assert (result["accepted"], result["rejected"]) == (50, 0)
    assert server.wait_for_exit() == 0, server.log
    assert stored_ids(database_url) == {item["id"]: 1 for item in items}
