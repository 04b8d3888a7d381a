"""The bottom of the house knows no feature: the plumbing modules of `app/` import no domain
package; only the modules that wire the service together may."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).parent.parent / "app"
DOMAINS = frozenset(path.name for path in APP.iterdir() if path.is_dir() and any(path.glob("*.py")))
PLUMBING = (
    "access_log",
    "bulk_write",
    "config",
    "csv_response",
    "db",
    "docs",
    "errors",
    "figures",
    "health",
    "inputs",
    "logs",
    "metrics",
    "migrate",
    "openapi",
    "pages",
    "pagination",
    "scales",
    "serving",
    "smoke",
    "tracing",
)
WIRING = ("__init__", "cli", "demo", "main")
"""Modules that assemble domains (the app, the command line, the demo data) and so may
import them."""


def _imported(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of every import of a module's code."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: these modules sit in the app package
                module = ".".join(filter(None, ("app", node.module)))
            if module == "app":  # `from app import moments`: the names are the modules
                found.extend((node.lineno, f"app.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, module))
    return found


def _domain_imports(name: str) -> list[str]:
    path = APP / f"{name}.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    return sorted(
        {
            f"app/{name}.py:{line} imports {module}"
            for line, module in _imported(tree)
            if module.split(".")[0] == "app"
            and len(module.split(".")) > 1
            and module.split(".")[1] in DOMAINS
        }
    )


def test_the_domains_are_found() -> None:
    assert {"followups", "insights", "keys", "moments", "surveys", "touchpoints"} <= DOMAINS


@pytest.mark.parametrize("name", PLUMBING)
def test_plumbing_imports_no_domain(name: str) -> None:
    offending = _domain_imports(name)
    assert not offending, "plumbing must not import a domain package:\n" + "\n".join(offending)


def test_every_top_level_module_is_plumbing_or_wiring() -> None:
    # A new module is placed on purpose: plumbing (then held to the rule) or wiring.
    modules = {path.stem for path in APP.glob("*.py")}
    unplaced = sorted(modules - set(PLUMBING) - set(WIRING))
    assert not unplaced, f"add to PLUMBING or WIRING in {Path(__file__).name}: {unplaced}"


def test_the_counts_sit_below_the_domains_that_write_and_read_them() -> None:
    # Touchpoints, privacy and surveys write counts and insights read them: the rollups
    # package must import none of them, or the layers would form a cycle.
    offending = sorted(
        f"{path.relative_to(APP.parent)}:{line} imports {module}"
        for path in (APP / "rollups").glob("*.py")
        for line, module in _imported(ast.parse(path.read_text(), filename=str(path)))
        if module.split(".")[0] == "app"
        and len(module.split(".")) > 1
        and module.split(".")[1] in DOMAINS - {"rollups"}
    )
    assert not offending, "the rollups must import no other domain:\n" + "\n".join(offending)


def test_starting_the_service_does_not_import_scipy() -> None:
    # scipy takes a fifth of a second to import: a command or a worker that computes no
    # figure must not pay it (`app.insights.special` imports it on first use).
    probe = "import sys, app.main, app.cli; print('scipy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=APP.parent
    )
    assert result.stdout.strip() == "False", result.stderr
