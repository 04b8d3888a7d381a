"""The `mot` command as users run it: real processes, real HTTP over a socket."""

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import ADMIN_KEY, MOT, Served, free_port


def _run(*args: str, database_url: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MOT_DATABASE_URL": database_url, "MOT_API_KEY": ADMIN_KEY}
    return subprocess.run(
        [MOT, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[str]:
    """`mot serve` running on a free port; yields its base URL."""
    with Served(database_url, tmp_path / "serve.log") as server:
        yield server.base_url


@pytest.mark.slow
def test_smoke_passes_against_a_running_service(served: str, database_url: str) -> None:
    result = _run("smoke", served, database_url=database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke check passed" in result.stdout
    # A second run must pass too: it uses fresh ids and an existing moment.
    again = _run("smoke", served, database_url=database_url)
    assert again.returncode == 0, again.stdout + again.stderr


def test_smoke_fails_clearly_when_nothing_listens(database_url: str) -> None:
    result = _run(
        "smoke", f"http://127.0.0.1:{free_port()}", "--timeout", "2", database_url=database_url
    )
    assert result.returncode == 1
    assert "FAIL cannot talk to http://127.0.0.1:" in result.stderr


def test_smoke_waits_for_a_service_that_never_gets_ready(database_url: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = _run("smoke", url, "--wait", "1", "--timeout", "0.5", database_url=database_url)
    assert result.returncode == 1
    assert "was not ready within 1 s" in result.stderr


def test_migrate_brings_an_empty_database_to_head(empty_database_url: str) -> None:
    result = _run("migrate", database_url=empty_database_url)
    assert result.returncode == 0, result.stderr
    assert "latest migration" in result.stdout


def test_demo_is_reproducible_and_idempotent(database_url: str) -> None:
    args = ("demo", "--touchpoints", "3000", "--days", "60", "--until", "2026-11-01")
    first = _run(*args, database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert "3000 touchpoints stored, 0 already there" in first.stdout
    second = _run(*args, database_url=database_url)
    assert "0 touchpoints stored, 3000 already there" in second.stdout


def test_rollups_rebuild_recounts_what_demo_data_stored(database_url: str) -> None:
    args = ("demo", "--touchpoints", "500", "--days", "20", "--until", "2026-11-01")
    assert _run(*args, database_url=database_url).returncode == 0
    first = _run("rollups", "rebuild", database_url=database_url)
    assert first.returncode == 0, first.stderr
    rows = int(first.stdout.split("rollups rebuilt: ")[1].split()[0])
    assert rows > 0
    # A rebuild of rollups that were already right writes the same rows again.
    second = _run("rollups", "rebuild", database_url=database_url)
    assert f"rollups rebuilt: {rows} rows" in second.stdout


def test_keys_can_be_created_listed_and_revoked_from_the_command_line(database_url: str) -> None:
    created = _run(
        "keys",
        "create",
        "--name",
        "telephony",
        "--scope",
        "ingest",
        "--scope",
        "read",
        database_url=database_url,
    )
    assert created.returncode == 0, created.stderr
    header, key = created.stdout.strip().splitlines()
    assert key.startswith("mot_")
    assert len(key) > 40
    number = header.split()[1]

    listed = _run("keys", "list", database_url=database_url)
    line = next(row for row in listed.stdout.splitlines() if "telephony" in row)
    assert line.split("\t")[:4] == [number, f"{key[:12]}...", "telephony", "ingest,read"]
    assert key not in listed.stdout

    revoked = _run("keys", "revoke", number, database_url=database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert "telephony" not in _run("keys", "list", database_url=database_url).stdout
    assert "revoked" in _run("keys", "list", "--include-revoked", database_url=database_url).stdout


def test_revoking_an_unknown_key_fails_clearly(database_url: str) -> None:
    result = _run("keys", "revoke", "999", database_url=database_url)
    assert result.returncode == 1
    assert "No API key 999" in result.stderr


@pytest.mark.slow
def test_first_start_creates_an_admin_key_and_prints_it_once(
    database_url: str, tmp_path: Path
) -> None:
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with Served(database_url, first_log, bootstrap_key=None) as server:
        base_url = server.base_url
        printed = re.findall(r"^\s+(mot_\S{40,})$", first_log.read_text(), re.MULTILINE)
        assert len(printed) == 1, first_log.read_text()
        auth = {"Authorization": f"Bearer {printed[0]}"}
        keys = httpx.get(f"{base_url}/v1/keys", headers=auth)
        assert keys.status_code == 200
        assert [(k["name"], k["scopes"]) for k in keys.json()] == [("bootstrap", ["admin"])]
    with Served(database_url, second_log, bootstrap_key=None):
        pass
    assert printed[0] not in second_log.read_text()
    assert "admin key was created" not in second_log.read_text()


def test_serving_a_database_not_yet_migrated_creates_no_key(
    empty_database_url: str, tmp_path: Path
) -> None:
    # --no-migrate on an empty database: the service starts (not ready) without a key.
    log = tmp_path / "serve.log"
    env = {**os.environ, "MOT_DATABASE_URL": empty_database_url}
    env.pop("MOT_BOOTSTRAP_API_KEY", None)
    command = [MOT, "serve", "--no-migrate", "--port", str(free_port())]
    with log.open("w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
        try:
            deadline = time.monotonic() + 60
            while "Application startup complete" not in log.read_text():
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = log.read_text()
    assert "not at the latest migration: no key created" in text
    assert "mot_" not in text


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_start_up_failure_is_logged_as_one_json_line(
    command: str, backend: str, tmp_path: Path
) -> None:
    (tmp_path / "a-file").touch()
    unreachable = (
        f"sqlite:///{tmp_path}/a-file/mot.db"
        if backend == "sqlite"
        else "postgresql://postgres@127.0.0.1:1/none"
    )
    arguments = ["--port", str(free_port())] if command == "serve" else []
    result = _run(command, *arguments, database_url=unreachable)
    assert result.returncode != 0
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    failures = [line for line in lines if line["level"] == "ERROR"]
    assert len(failures) == 1, result.stderr
    assert "could not start" in failures[0]["message"]
    # The traceback is kept, inside the line, without the messages that may quote data.
    assert "Traceback" in failures[0]["exc_info"]
