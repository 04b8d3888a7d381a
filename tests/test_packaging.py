"""The wheel holds the whole service: every package of app/, and the migrations with it.

`.ci/wheel-check` builds the wheel and runs it from elsewhere; this finds a missing package
in a second, when it is added.
"""

import re
import tomllib
from pathlib import Path

import pytest

from app import migrate

ROOT = Path(__file__).resolve().parent.parent


def _packages(top: str, *, named: str) -> set[str]:
    """The importable directories under `top` (any holding a file), as package names."""
    found = set()
    for directory in [ROOT / top, *(ROOT / top).rglob("*")]:
        if not directory.is_dir() or "__pycache__" in directory.parts:
            continue
        if any(entry.is_file() for entry in directory.iterdir()):
            relative = directory.relative_to(ROOT / top).parts
            found.add(".".join([named, *relative]))
    return found


def test_every_package_of_the_service_is_in_the_wheel() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    expected = _packages("app", named="app") | _packages("migrations", named="app.migrations")
    assert set(setuptools["packages"]) == expected
    assert setuptools["package-dir"] == {"app.migrations": "migrations"}


def test_the_migrations_are_found_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    found = migrate.migrations_dir()
    assert (found / "env.py").is_file()
    assert sorted(path.name for path in (found / "versions").glob("*.py")) == sorted(
        path.name for path in (ROOT / "migrations" / "versions").glob("*.py")
    )


def test_the_image_is_labelled_with_the_version_it_installs() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    # The image installs the wheel by its file name, so a stale version fails the build too.
    assert re.findall(r"^ARG MOT_VERSION=(\S+)$", dockerfile, re.MULTILINE) == [version]
