"""The `mot` command as users run it: real processes, real HTTP over a socket."""

import itertools
import json
import os
import pty
import re
import subprocess
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from app import migrate
from app.smoke import SMOKE_STEPS, WAIT_STEP
from tests.servers import ADMIN_KEY, MOT, Served, free_port


def _run(
    *args: str,
    database_url: str,
    timeout: float = 120,
    cwd: Path | None = None,
    **variables: str,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MOT_DATABASE_URL": database_url, "MOT_API_KEY": ADMIN_KEY, **variables}
    return subprocess.run(
        [MOT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[str]:
    """`mot serve` running on a free port; yields its base URL."""
    with Served(database_url, tmp_path / "serve.log") as server:
        yield server.base_url


@pytest.mark.slow
def test_smoke_passes_against_a_running_service(
    served: str, database_url: str, tmp_path: Path
) -> None:
    result = _run("smoke", served, database_url=database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke check passed" in result.stdout
    # A second run must pass too: it uses fresh ids and an existing moment.
    report = tmp_path / "smoke.xml"
    again = _run(
        "smoke", served, "--wait", "5", "--junit", str(report), "--json", database_url=database_url
    )
    assert again.returncode == 0, again.stdout + again.stderr
    result_object = json.loads(again.stdout)
    assert result_object["passed"] is True
    assert [step["name"] for step in result_object["steps"]] == [WAIT_STEP, *SMOKE_STEPS]
    assert all(step["failure"] is None for step in result_object["steps"])
    # The step lines go to stderr, away from the one JSON object.
    assert f"ok  {SMOKE_STEPS[0]}" in again.stderr

    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [WAIT_STEP, *SMOKE_STEPS]
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("6", "0", "0")
    assert not [child for case in cases for child in case]


@pytest.fixture
def unused_database_url(tmp_path: Path) -> str:
    """For `mot smoke` against a service that is down: the command speaks HTTP only and
    opens no database, so these checks run once rather than once per backend."""
    return f"sqlite:///{tmp_path / 'unused.sqlite'}"


def test_smoke_report_names_the_failing_step_and_skips_the_rest(
    unused_database_url: str, tmp_path: Path
) -> None:
    report = tmp_path / "smoke.xml"
    url = f"http://127.0.0.1:{free_port()}"
    result = _run(
        "smoke",
        url,
        "--timeout",
        "2",
        "--junit",
        str(report),
        "--json",
        database_url=unused_database_url,
    )
    assert result.returncode == 1
    assert "FAIL cannot talk to" in result.stderr
    result_object = json.loads(result.stdout)
    assert result_object["passed"] is False
    assert result_object["failure"].startswith(f"cannot talk to {url}")

    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert suite is not None
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == list(SMOKE_STEPS)
    failure = cases[SMOKE_STEPS[0]].find("failure")
    assert failure is not None
    assert (failure.get("message") or "").startswith(f"cannot talk to {url}")
    assert all(cases[name].find("skipped") is not None for name in SMOKE_STEPS[1:])
    assert (suite.get("failures"), suite.get("skipped")) == ("1", str(len(SMOKE_STEPS) - 1))


def test_smoke_report_records_a_wait_that_ran_out(unused_database_url: str, tmp_path: Path) -> None:
    report = tmp_path / "smoke.xml"
    url = f"http://127.0.0.1:{free_port()}"
    result = _run(
        "smoke",
        url,
        "--wait",
        "1",
        "--timeout",
        "0.5",
        "--junit",
        str(report),
        database_url=unused_database_url,
    )
    assert result.returncode == 1
    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert suite is not None
    first, *others = suite.findall("testcase")
    assert first.get("name") == WAIT_STEP
    failure = first.find("failure")
    assert failure is not None
    assert "was not ready within 1 s" in (failure.text or "")
    assert [case.get("name") for case in others] == list(SMOKE_STEPS)
    assert all(case.find("skipped") is not None for case in others)


def test_smoke_fails_clearly_when_nothing_listens(unused_database_url: str) -> None:
    result = _run(
        "smoke",
        f"http://127.0.0.1:{free_port()}",
        "--timeout",
        "2",
        database_url=unused_database_url,
    )
    assert result.returncode == 1
    assert "FAIL cannot talk to http://127.0.0.1:" in result.stderr


def test_smoke_waits_for_a_service_that_never_gets_ready(unused_database_url: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = _run("smoke", url, "--wait", "1", "--timeout", "0.5", database_url=unused_database_url)
    assert result.returncode == 1
    assert "was not ready within 1 s" in result.stderr


def test_migrate_brings_an_empty_database_to_head(empty_database_url: str) -> None:
    result = _run("migrate", database_url=empty_database_url)
    assert result.returncode == 0, result.stderr
    assert "latest migration" in result.stdout


def test_migrate_finds_the_migrations_from_any_directory(
    empty_database_url: str, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _run("migrate", "--json", database_url=empty_database_url, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "schema": "current",
        "revisions": sorted(migrate.head_revisions(empty_database_url)),
    }
    assert list(elsewhere.iterdir()) == []


def test_version_is_the_installed_distributions() -> None:
    result = subprocess.run([MOT, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout == f"mot {metadata.version('mot')}\n"


def _progress_lines(stderr: str, label: str) -> list[tuple[int, int]]:
    steps = re.findall(rf"^{re.escape(label)}: (\d+)/(\d+) ", stderr, re.MULTILINE)
    return [(int(done), int(total)) for done, total in steps]


def test_long_commands_report_progress_line_by_line_and_results_as_json(
    database_url: str,
) -> None:
    args = ("demo", "--touchpoints", "2500", "--days", "20", "--until", "2026-11-01", "--json")
    loaded = _run(*args, database_url=database_url)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout) == {
        "stored": 2500,
        "duplicates": 0,
        "until": "2026-11-01",
        "days": 20,
        "seed": 7,
    }
    assert _progress_lines(loaded.stderr, "demo data") == [
        (0, 2500),
        (1000, 2500),
        (2000, 2500),
        (2500, 2500),
    ]

    rebuilt = _run("rollups", "rebuild", "--json", database_url=database_url)
    assert rebuilt.returncode == 0, rebuilt.stderr
    rebuild = json.loads(rebuilt.stdout)
    assert rebuild["rows"] > 0
    assert rebuild["kept_before"] is None
    steps = _progress_lines(rebuilt.stderr, "rollups rebuild")
    assert steps == [(done, steps[-1][1]) for done in range(steps[-1][1] + 1)]

    folded = _run("rollups", "fold", "--json", database_url=database_url)
    assert folded.returncode == 0, folded.stderr
    assert json.loads(folded.stdout) == {"folded": 0, "another_folder_at_work": False}

    # Until 2026-11-01 over 20 days: a retention of 10 days from today purges every one
    # but those whose follow-up is still open.
    purged = _run(
        "purge",
        "--chunk-size",
        "1000",
        "--json",
        database_url=database_url,
        MOT_RETENTION_DAYS="10",
    )
    assert purged.returncode == 0, purged.stderr
    purge = json.loads(purged.stdout)
    deleted = purge["removed"]["touchpoints"]
    assert deleted + purge["kept_open"] == 2500
    assert purge["retention_days"] == 10
    assert purge["dry_run"] is False
    assert isinstance(purge["audit_entry"], int)
    lines = _progress_lines(purged.stderr, "purge")
    assert lines[0] == (0, deleted)
    assert lines[-1] == (deleted, deleted)
    assert len(lines) >= 4  # 0, then a line per chunk of at most 1000
    assert all(0 <= b[0] - a[0] <= 1000 for a, b in itertools.pairwise(lines))

    again = _run("rollups", "rebuild", "--json", database_url=database_url)
    assert json.loads(again.stdout)["kept_before"] == purge["occurred_before"][:10]


def test_progress_is_a_bar_on_a_terminal(database_url: str) -> None:
    controller, terminal = pty.openpty()
    env = {**os.environ, "MOT_DATABASE_URL": database_url, "COLUMNS": "100"}
    with subprocess.Popen(
        [MOT, "rollups", "rebuild"], env=env, stdout=subprocess.PIPE, stderr=terminal
    ) as process:
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the other end closed: the command is done
                break
            if not chunk:
                break
            shown += chunk
        stdout = process.stdout.read() if process.stdout else b""
    os.close(controller)
    assert process.returncode == 0, shown
    assert b"rollups rebuilt" in stdout
    drawn = shown.decode(errors="replace")
    assert "\u2501" in drawn  # the bar's line
    assert re.search(r"7/7", re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", drawn))
    assert not _progress_lines(drawn, "rollups rebuild")


def test_demo_is_reproducible_and_idempotent(database_url: str) -> None:
    args = ("demo", "--touchpoints", "1000", "--days", "60", "--until", "2026-11-01")
    first = _run(*args, database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert "1000 touchpoints stored, 0 already there" in first.stdout
    second = _run(*args, database_url=database_url)
    assert "0 touchpoints stored, 1000 already there" in second.stdout


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


def test_keys_are_created_and_listed_as_json_for_scripts(database_url: str) -> None:
    created = _run(
        "keys",
        "create",
        "--name",
        "portal",
        "--scope",
        "ingest",
        "--json",
        database_url=database_url,
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"].startswith("mot_")
    assert (key["name"], key["scopes"]) == ("portal", ["ingest"])

    listed = json.loads(_run("keys", "list", "--json", database_url=database_url).stdout)
    portal = [entry for entry in listed["keys"] if entry["name"] == "portal"]
    assert [entry["id"] for entry in portal] == [key["id"]]
    assert "key" not in portal[0]
    assert key["key"] not in json.dumps(listed)


def test_revoking_an_unknown_key_fails_clearly(database_url: str) -> None:
    result = _run("keys", "revoke", "999", database_url=database_url)
    assert result.returncode == 1
    assert "No API key 999" in result.stderr


@pytest.mark.slow
def test_serving_on_the_development_secret_warns_at_start(tmp_path: Path) -> None:
    # Settings, not storage: one backend is enough (a new SQLite file, migrated at start).
    database_url = f"sqlite:///{tmp_path / 'mot.sqlite'}"
    warning = "links are signed with the development secret"
    default = Served(database_url, tmp_path / "default.log")
    default.env.pop("MOT_SECRET_KEY", None)
    with default:
        pass
    lines = [json.loads(line) for line in default.log.splitlines() if line.startswith("{")]
    warned = [line for line in lines if warning in line["message"]]
    assert [line["level"] for line in warned] == ["WARNING"], default.log

    secret = {"MOT_SECRET_KEY": "a-real-secret-of-at-least-32-characters-0123"}
    with Served(database_url, tmp_path / "secret.log", env=secret) as configured:
        pass
    assert warning not in configured.log


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
