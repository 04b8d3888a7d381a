"""The compose file runs what the service offers: its commands, options and settings exist.

No container engine runs here: the file's shape is checked against the Compose
specification by `make lint` (check-jsonschema), and `docker compose config` where a client
with compose is installed. This finds a renamed command, option or setting in a second.
"""

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from app.cli import cli
from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
MOT_SERVICES = {
    name: service for name, service in COMPOSE["services"].items() if service.get("build") == "."
}


def test_the_compose_file_runs_mot_beside_postgresql_and_rabbitmq() -> None:
    assert {"postgres", "rabbitmq", "migrate", "api"} <= set(COMPOSE["services"])
    assert MOT_SERVICES["api"]["deploy"]["replicas"] == 2
    # Nothing serves before the schema is migrated, once.
    for name, service in MOT_SERVICES.items():
        if name != "migrate":
            condition = service["depends_on"]["migrate"]["condition"]
            assert condition == "service_completed_successfully"
    assert MOT_SERVICES["migrate"]["restart"] == "no"


@pytest.mark.parametrize("name", sorted(MOT_SERVICES))
def test_each_service_runs_a_command_mot_has(name: str) -> None:
    program, *arguments = MOT_SERVICES[name]["command"]
    assert program == "mot"
    group = typer.main.get_command(cli)
    assert isinstance(group, typer.core.TyperGroup)
    with group.make_context("mot", list(arguments)) as context:
        command_name, command, rest = group.resolve_command(context, list(arguments))
        assert command is not None, f"mot has no command {command_name}"
        # Unknown options or bad values raise here, as they would when the container starts.
        command.make_context(str(command_name), rest, parent=context).close()


@pytest.mark.parametrize("name", sorted(MOT_SERVICES))
def test_each_setting_given_is_one_mot_reads(name: str) -> None:
    known = {f"MOT_{field.upper()}" for field in Settings.model_fields}
    given = {key for key in MOT_SERVICES[name]["environment"] if key.startswith("MOT_")}
    assert given <= known, f"unknown settings: {sorted(given - known)}"
