"""The `mot` command: serve, migrate, demo data and the smoke check."""

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from app import demo, migrate, serving
from app.config import get_settings
from app.db import Database
from app.insights import rollups
from app.smoke import SmokeFailure, run_smoke, wait_until_ready

cli = typer.Typer(help="mot: Moments of Truth experience-survey service.", no_args_is_help=True)


def _ensure_sqlite_directory(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _migrate_to_head() -> None:
    settings = get_settings()
    _ensure_sqlite_directory(settings.database_url)
    migrate.upgrade(settings.database_url)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    run_migrations: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations before serving.")
    ] = True,
) -> None:
    """Apply pending migrations, then serve the API (docs at /docs).

    SIGTERM stops it gracefully: new connections are refused, requests in flight finish.
    """
    if run_migrations:
        _migrate_to_head()
    serving.run(host=host, port=port, workers=workers, log_level=get_settings().log_level)


@cli.command("migrate")
def migrate_command() -> None:
    """Apply pending database migrations."""
    _migrate_to_head()
    typer.echo("database schema is at the latest migration")


@cli.command("demo")
def demo_command(
    touchpoints: Annotated[int, typer.Option(min=1, help="How many touchpoints.")] = 30_000,
    days: Annotated[int, typer.Option(min=1, help="Days of history.")] = 180,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data.")] = 7,
    until: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last day of data (UTC); default today."),
    ] = None,
) -> None:
    """Fill the database with a realistic, reproducible demo data set."""
    _migrate_to_head()
    end = until.replace(tzinfo=UTC) if until else demo.default_until()
    payloads = demo.generate(touchpoints=touchpoints, days=days, seed=seed, until=end)

    async def _load() -> tuple[int, int]:
        database = Database(get_settings().database_url)
        try:
            return await demo.load(
                database,
                payloads=payloads,
                follow_up_targets=get_settings().follow_up_targets(),
            )
        finally:
            await database.dispose()

    stored, duplicates = asyncio.run(_load())
    typer.echo(f"demo data: {stored} touchpoints stored, {duplicates} already there")


rollups_cli = typer.Typer(help="The counts insights read, per moment, day and month.")
cli.add_typer(rollups_cli, name="rollups")


@rollups_cli.command("rebuild")
def rollups_rebuild() -> None:
    """Recount every rollup from the touchpoints, in one transaction.

    Rollups are kept up to date by every write; rebuild after loading touchpoints by other
    means than the API (e.g. a bulk copy), or to check nothing drifted.
    """
    _migrate_to_head()

    async def _rebuild() -> int:
        database = Database(get_settings().database_url)
        try:
            async with database.write_sessions() as session, session.begin():
                return await rollups.rebuild(session)
        finally:
            await database.dispose()

    typer.echo(f"rollups rebuilt: {asyncio.run(_rebuild())} rows")


@cli.command()
def smoke(
    url: Annotated[str, typer.Argument(help="Base URL of a running service.")],
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 10.0,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for the service to become ready first.")
    ] = 0,
) -> None:
    """Post a few touchpoints to a running service and read them back; exit 1 on failure."""
    base_url = url.rstrip("/")
    try:
        if wait > 0:
            wait_until_ready(base_url, seconds=wait, timeout=timeout)
        run_smoke(base_url, timeout=timeout, report=typer.echo)
    except SmokeFailure as failure:
        typer.echo(f"FAIL {failure}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"smoke check passed against {url}")


def main() -> None:
    sys.exit(cli())
