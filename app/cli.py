"""The `mot` command: serve, consume, migrate, demo data, rollups, keys, purge and the smoke
check."""

import asyncio
import json
import logging
import logging.config
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from prometheus_client import start_http_server
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from uvicorn.config import STARTUP_FAILURE

from app import demo, logs, metrics, migrate, serving
from app.broker import consumer
from app.config import DEVELOPMENT_SECRET, get_settings
from app.db import Database
from app.errors import AppError
from app.followups import targets as followups_targets
from app.idempotency import service as idempotency_service
from app.insights import counts
from app.keys import service as keys_service
from app.keys.schemas import ApiKeyCreate, ApiKeyRead, Scope
from app.privacy import service as privacy_service
from app.privacy.schemas import RemovedCounts
from app.rollups import service as rollups
from app.smoke import (
    WAIT_STEP,
    SmokeFailure,
    StepResult,
    junit_report,
    run_smoke,
    wait_until_ready,
)
from app.touchpoints import partitions

T = TypeVar("T")
logger = logging.getLogger(__name__)

cli = typer.Typer(help="mot: Moments of Truth experience-survey service.", no_args_is_help=True)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON object, for scripts.")
]


def _installed_version() -> str:
    """The version of the installed distribution, as `pip` knows it."""
    try:
        return metadata.version("mot")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mot {_installed_version()}")
        raise typer.Exit()


@cli.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version, exit."
        ),
    ] = False,
) -> None:
    """mot: Moments of Truth experience-survey service."""


def _print_json(result: dict[str, Any]) -> None:
    typer.echo(json.dumps(result, sort_keys=True))


@contextmanager
def _progress(label: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A `progress(done, total)` callable for a long command, shown on stderr: a bar on a
    terminal, else one line per step (a log, or a CI job's output, keeps every line)."""
    console = Console(stderr=True)
    if not console.is_terminal:

        def line(done: int, total: int) -> None:
            typer.echo(f"{label}: {done}/{total} {unit}", err=True)

        yield line
        return
    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def _ensure_sqlite_directory(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _migrate_to_head() -> None:
    settings = get_settings()
    _ensure_sqlite_directory(settings.database_url)
    migrate.upgrade(settings.database_url)


@contextmanager
def _starting(log_config: dict[str, Any]) -> Iterator[None]:
    """Log as the service does, and report a failure to start as one JSON log line (then
    exit 3, as uvicorn does for a worker that cannot start).

    A traceback spread over many lines of stderr is split by log collectors into as many
    unrelated records, none of them JSON; in one line it stays one event, with its frames.
    """
    logging.config.dictConfig(log_config)
    try:
        yield
    except Exception:
        logger.exception("mot could not start")
        raise typer.Exit(code=STARTUP_FAILURE) from None


def _with_database(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on the configured database, from a command."""

    async def _run() -> T:
        database = Database.of(get_settings())
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(_run())


def _in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one writing transaction on the configured database, from a command."""

    async def _run(database: Database) -> T:
        async with database.write_sessions() as session, session.begin():
            return await work(session)

    return _with_database(_run)


def _bootstrap_admin_key() -> None:
    """Give a fresh install its first admin key, so that it can be used at once."""
    url = get_settings().database_url
    if migrate.current_revisions_sync(url) != migrate.head_revisions(url):
        # Served with --no-migrate before migrating: /readyz says so; keys come later.
        logger.warning("the database schema is not at the latest migration: no key created")
        return
    configured = get_settings().bootstrap_api_key
    given = configured.get_secret_value() if configured else None
    created = _with_database(lambda database: keys_service.bootstrap(database, key=given))
    if created is None or given is not None:
        return
    typer.echo(
        "\n".join(
            [
                "",
                "No API key existed, so an admin key was created. It is shown only this once:",
                "",
                f"    {created.key}",
                "",
                "Send it as `Authorization: Bearer <key>`; create narrower keys with",
                "`mot keys create` or POST /v1/keys.",
                "",
            ]
        ),
        err=True,
    )


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
    settings = get_settings()
    log_level = settings.log_level
    log_config = logs.config(log_level)
    with _starting(log_config):  # the migrations' lines are JSON too
        if settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET:
            # Allowed in development only (production refuses to start): anyone who reads
            # the source can forge survey links and status pages signed with it.
            logger.warning(
                "MOT_SECRET_KEY is not set: links are signed with the development secret, "
                "which anyone can forge; set MOT_SECRET_KEY before clients get links"
            )
        if run_migrations:
            _migrate_to_head()
        _bootstrap_admin_key()
    with metrics.shared_by_workers(workers):
        serving.run(
            host=host, port=port, workers=workers, log_level=log_level, log_config=log_config
        )


@cli.command("migrate")
def migrate_command(as_json: JsonOption = False) -> None:
    """Apply pending database migrations."""
    # Often the step before the service starts (a release job, an init container): its
    # lines are the service's.
    with _starting(logs.config(get_settings().log_level)):
        _migrate_to_head()
    if as_json:
        revisions = migrate.current_revisions_sync(get_settings().database_url)
        _print_json({"schema": "current", "revisions": sorted(revisions)})
        return
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
    as_json: JsonOption = False,
) -> None:
    """Fill the database with a realistic, reproducible demo data set."""
    _migrate_to_head()
    end = until.replace(tzinfo=UTC) if until else demo.default_until()
    payloads = demo.generate(touchpoints=touchpoints, days=days, seed=seed, until=end)

    with _progress("demo data", "touchpoints") as progress:
        stored, duplicates = _with_database(
            lambda database: demo.load(
                database,
                payloads=payloads,
                follow_up_targets=followups_targets.from_settings(get_settings()),
                progress=progress,
                actions=demo.planted_actions(end),
            )
        )
    if as_json:
        _print_json(
            {
                "stored": stored,
                "duplicates": duplicates,
                "until": end.date().isoformat(),
                "days": days,
                "seed": seed,
            }
        )
        return
    typer.echo(f"demo data: {stored} touchpoints stored, {duplicates} already there")


rollups_cli = typer.Typer(help="The counts insights read, per moment, day and month.")
cli.add_typer(rollups_cli, name="rollups")


@rollups_cli.command("rebuild")
def rollups_rebuild(as_json: JsonOption = False) -> None:
    """Recount every rollup from the touchpoints, in one transaction.

    Rollups are kept up to date by every write; rebuild after loading touchpoints by other
    means than the API (e.g. a bulk copy), or to check nothing drifted. The days of
    touchpoints purged by `mot purge` are kept as they are: they cannot be recounted.
    Writes wait while it runs.
    """
    _migrate_to_head()

    with _progress("rollups rebuild", "recounts") as progress:

        async def _rebuild(session: AsyncSession) -> tuple[int, date | None]:
            since = await privacy_service.purged_until(session)
            return await counts.rebuild(session, since=since, progress=progress), since

        rows, since = _in_transaction(_rebuild)
    if as_json:
        _print_json({"rows": rows, "kept_before": since.isoformat() if since else None})
        return
    kept = f" (days before {since.isoformat()} kept: purged)" if since else ""
    typer.echo(f"rollups rebuilt: {rows} rows{kept}")


@rollups_cli.command("fold")
def rollups_fold(as_json: JsonOption = False) -> None:
    """Fold the pending count deltas into the rollups now, in one transaction.

    `mot serve` folds by itself every moment; this is for a database written while no
    service ran. Readers add pending deltas themselves, so figures are the same either way.
    """
    _migrate_to_head()
    folded = _with_database(rollups.fold_once)
    if as_json:
        # None: another process held the fold lock; nothing was folded here.
        _print_json({"folded": folded or 0, "another_folder_at_work": folded is None})
        return
    if folded is None:
        typer.echo("another folder is at work; nothing folded")
        return
    typer.echo(f"rollups: {folded} count deltas folded")


partitions_cli = typer.Typer(help="PostgreSQL's monthly partitions of the touchpoints.")
cli.add_typer(partitions_cli, name="partitions")


@partitions_cli.command("ensure")
def partitions_ensure(
    months: Annotated[
        int | None,
        typer.Option(
            min=0, max=24, help="Months after this one (default: MOT_PARTITION_MONTHS_AHEAD)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create the touchpoint partitions of this month and the next ones that are missing.

    `mot serve` does it at start and every hour; this is for a database written while no
    service runs. Safe to run at any time, from several places at once. SQLite keeps one
    table: nothing to do there.
    """
    _migrate_to_head()
    settings = get_settings()
    ahead = settings.partition_months_ahead if months is None else months
    today = datetime.now(UTC).date()

    async def _ensure(session: AsyncSession) -> tuple[list[str], list[str]]:
        created = await partitions.ensure(session, today=today, months_ahead=ahead)
        existing = await partitions.monthly_partitions(session)
        return created, [partition.name for partition in existing]

    created, existing = _in_transaction(_ensure)
    if as_json:
        _print_json({"created": created, "partitions": existing})
        return
    if not existing:
        typer.echo("no partitions: the touchpoints are one table on this database")
        return
    typer.echo(f"partitions created: {', '.join(created) or 'none (all there)'}")
    typer.echo(f"monthly partitions: {existing[0]} to {existing[-1]} ({len(existing)})")


keys_cli = typer.Typer(help="API keys: create, list, revoke.")
cli.add_typer(keys_cli, name="keys")


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    scope: Annotated[list[Scope], typer.Option(help="A scope the key gets; repeat for several.")],
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it, this once; only its hash is stored."""
    _migrate_to_head()
    data = ApiKeyCreate(name=name, scopes=scope)

    created = _in_transaction(lambda session: keys_service.create(session, data=data))
    if as_json:
        _print_json(created.model_dump(mode="json"))
        return
    typer.echo(f"key {created.id} ({created.name}; {', '.join(created.scopes)}): store it now")
    typer.echo(created.key)


@keys_cli.command("list")
def keys_list(
    include_revoked: Annotated[bool, typer.Option(help="Also list revoked keys.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The keys: number, prefix, name, scopes, last use."""
    _migrate_to_head()

    async def _list(database: Database) -> list[ApiKeyRead]:
        async with database.read_sessions() as session:
            return await keys_service.list_keys(session, include_revoked=include_revoked)

    keys = _with_database(_list)
    if as_json:
        _print_json({"keys": [key.model_dump(mode="json") for key in keys]})
        return
    for key in keys:
        last_used = key.last_used_at.isoformat() if key.last_used_at else "never used"
        revoked = f"  revoked {key.revoked_at.isoformat()}" if key.revoked_at else ""
        typer.echo(
            f"{key.id}\t{key.prefix}...\t{key.name}\t{','.join(key.scopes)}\t{last_used}{revoked}"
        )


@keys_cli.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="Key number, from `keys list`.")],
) -> None:
    """Revoke a key: running services refuse it within MOT_API_KEY_CACHE_SECONDS (5 s)."""
    _migrate_to_head()

    try:
        revoked = _in_transaction(lambda session: keys_service.revoke(session, key_id=key_id))
    except AppError as error:
        typer.echo(error.message, err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"key {revoked.id} ({revoked.name}) revoked")


@cli.command()
def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    chunk_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Touchpoints deleted per transaction.")
    ] = privacy_service.PURGE_CHUNK,
    as_json: JsonOption = False,
) -> None:
    """Delete touchpoints older than MOT_RETENTION_DAYS, with everything about them, and
    the answers kept for idempotency keys once their 24 hours are over.

    The rollups keep their counts, so rankings over old periods stay as they were.
    Touchpoints whose follow-up is still open are kept until it is resolved or closed.
    Safe to interrupt and to run again; run it daily (see the README).
    """
    _migrate_to_head()
    if not dry_run:
        expired = _in_transaction(
            lambda session: idempotency_service.purge_expired(session, now=datetime.now(UTC))
        )
        # Stdout is the JSON result's alone when one is asked for.
        typer.echo(f"idempotency keys older than 24 hours: deleted {expired}", err=as_json)
    days = get_settings().retention_days
    if days is None:
        if as_json:
            _print_json({"retention_days": None, "dry_run": dry_run, "removed": None})
            return
        typer.echo("MOT_RETENTION_DAYS is not set: touchpoints are kept forever; nothing purged")
        return
    cutoff = privacy_service.retention_cutoff(datetime.now(UTC), days=days)
    with _progress("purge", "touchpoints deleted") as progress:
        report = _with_database(
            lambda database: privacy_service.purge(
                database,
                occurred_before=cutoff,
                chunk_size=chunk_size,
                dry_run=dry_run,
                progress=progress,
            )
        )
    if as_json:
        _print_json(
            {
                "retention_days": days,
                "dry_run": dry_run,
                "occurred_before": cutoff.isoformat(),
                "removed": report.removed.model_dump(),
                "kept_open": report.kept_open,
                "audit_entry": report.audit_entry,
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"purge of touchpoints that occurred before {cutoff.isoformat()} "
        f"(retention {days} days): {verb}"
    )
    for name in RemovedCounts.model_fields:
        typer.echo(f"  {name}: {getattr(report.removed, name)}")
    typer.echo(f"kept: {report.kept_open} touchpoints past retention with an open follow-up")
    if report.audit_entry is not None:
        typer.echo(f"audit entry {report.audit_entry}")


@cli.command()
def consume(
    url: Annotated[
        str | None,
        typer.Option(
            help="RabbitMQ URL; default MOT_AMQP_URL (prefer it: a password given here "
            "shows in the process list)."
        ),
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Queue; default MOT_AMQP_QUEUE.")] = None,
    exchange: Annotated[
        str | None, typer.Option(help="Existing exchange to bind to; default MOT_AMQP_EXCHANGE.")
    ] = None,
    routing_key: Annotated[
        str | None,
        typer.Option(
            help="Routing key of the binding; default MOT_AMQP_ROUTING_KEY, else the queue."
        ),
    ] = None,
    prefetch: Annotated[
        int | None,
        typer.Option(
            min=1, max=10_000, help="Unacknowledged messages at once; default MOT_AMQP_PREFETCH."
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=0, max=65_535, help="Serve /metrics (Prometheus) on this port."),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface of /metrics.")] = "127.0.0.1",
    run_migrations: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations before consuming.")
    ] = True,
) -> None:
    """Store touchpoints from a RabbitMQ queue, exactly once, until SIGTERM.

    Messages are touchpoints in JSON (one or a list), stored as `POST /v1/touchpoints/batch`
    stores them and acknowledged after the commit; refused ones go to `<queue>.dead` with
    their errors in the header `x-mot-errors`. Several consumers may share a queue.
    """
    settings = get_settings()
    with _starting(logs.config(settings.log_level)):
        if run_migrations:
            _migrate_to_head()
        defaults = consumer.Route.of(settings)
        route = consumer.Route(
            queue or defaults.queue,
            exchange or defaults.exchange,
            routing_key or defaults.routing_key,
            prefetch or defaults.prefetch,
        )
        if metrics_port is not None:
            start_http_server(metrics_port, addr=metrics_host)
    try:
        consumer.run_until_signalled(
            settings, url=url or settings.amqp_url.get_secret_value(), route=route
        )
    except consumer.SetupRefused as refused:
        logger.error("mot consume could not start: %s", refused)
        raise typer.Exit(code=STARTUP_FAILURE) from None


@cli.command()
def smoke(
    url: Annotated[str, typer.Argument(help="Base URL of a running service.")],
    api_key: Annotated[
        str,
        typer.Option(envvar="MOT_API_KEY", help="Key with the ingest, read and manage scopes."),
    ],
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 10.0,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for the service to become ready first.")
    ] = 0,
    junit: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False, help="Also write a JUnit XML report here, one test case per step."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Post a few touchpoints to a running service and read them back; exit 1 on failure."""
    base_url = url.rstrip("/")
    results: list[StepResult] = []
    # With --json the step lines still tell a reader what happens, away from the result.
    report = (lambda line: typer.echo(line, err=True)) if as_json else typer.echo
    failure: SmokeFailure | None = None
    if wait > 0:
        started = time.monotonic()
        try:
            wait_until_ready(base_url, seconds=wait, timeout=timeout)
        except SmokeFailure as error:
            failure = error
        waited = time.monotonic() - started
        results.append(StepResult(WAIT_STEP, waited, None if failure is None else str(failure)))
    if failure is None:
        try:
            run_smoke(base_url, api_key=api_key, timeout=timeout, report=report, results=results)
        except SmokeFailure as error:
            failure = error
    if junit is not None:
        junit.write_bytes(junit_report(results, url=url))
    if as_json:
        _print_json(
            {
                "url": url,
                "passed": failure is None,
                "failure": None if failure is None else str(failure),
                "steps": [
                    {"name": r.name, "seconds": round(r.seconds, 3), "failure": r.failure}
                    for r in results
                ],
            }
        )
    if failure is not None:
        typer.echo(f"FAIL {failure}", err=True)
        raise typer.Exit(code=1)
    if not as_json:
        typer.echo(f"smoke check passed against {url}")


def main() -> None:
    sys.exit(cli())
