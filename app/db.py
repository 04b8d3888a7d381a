"""Database plumbing: declarative base, UTC timestamps, engines and the per-request session."""

import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import Depends, Request
from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Dialect,
    MetaData,
    Text,
    bindparam,
    cast,
    event,
    func,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from app.config import Settings

logger = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# The table option of every table whose numbers leave the service (in links, in the API, in
# webhook deliveries, in the audit log): a number is never given out twice. PostgreSQL's
# sequences never go back; SQLite, without AUTOINCREMENT, gives the number of the newest
# deleted row to the next one, and an erased client's links would open the next client's.
NEVER_REUSED_IDS: dict[str, Any] = {"sqlite_autoincrement": True}

# Integer keys are 32-bit on both backends; a larger number in a path can name no row and
# must be refused before it reaches the driver.
MAX_INTEGER_ID = 2**31 - 1


class RandomNonce(FunctionElement[int]):
    """A random number from 0 to 2**52 - 1, drawn by the database for each row it inserts.

    A server default, so that every way rows are written (COPY, INSERT ... SELECT) draws
    one. It need not be secret, only different from row to row: it is signed into links.
    """

    type = BigInteger()
    inherit_cache = True


@compiles(RandomNonce, "postgresql")
def _random_nonce_postgresql(element: RandomNonce, compiler: SQLCompiler, **kw: Any) -> str:
    return "(floor(random() * 4503599627370496)::bigint)"


@compiles(RandomNonce, "sqlite")
def _random_nonce_sqlite(element: RandomNonce, compiler: SQLCompiler, **kw: Any) -> str:
    return "(random() & 4503599627370495)"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp always stored in UTC and always read back timezone-aware.

    SQLite has no timestamp type: values are stored as naive UTC text, which keeps
    lexical and chronological order the same.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def dialect_insert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT in the session's dialect, so that it can say ON CONFLICT."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def one_of(
    session: AsyncSession,
    column: ColumnElement[str] | InstrumentedAttribute[str],
    values: Collection[str],
) -> ColumnElement[bool]:
    """`column IN values`, sent to PostgreSQL as one JSON text parameter.

    An IN list of a thousand values is a thousand bind parameters to render and parse on
    every call; one parameter is a statement the server can cache. JSON rather than an
    array: the driver dumps a list item by item in Python, `json.dumps` in one C call.
    """
    if session.get_bind().dialect.name == "postgresql":
        listed = bindparam(None, json.dumps(list(values)), type_=Text)
        elements = func.json_array_elements_text(cast(listed, JSON)).column_valued("value")
        return column.in_(select(elements))
    return column.in_(values)


def sync_url(url: str) -> str:
    """The URL with a blocking driver, for migrations and command-line tools."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def async_url(url: str) -> str:
    """The URL with the asyncio driver the service runs on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


# SQLite's primary result codes for a file that cannot be used now, whatever the statement:
# still locked by another writer once the busy timeout ran out, unreadable, full, or not
# there to open.
_SQLITE_UNAVAILABLE = frozenset(
    {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN}
)
# PostgreSQL's SQLSTATEs for a server that lost, ended or refused the session: connection
# exceptions (08), insufficient resources (53: too many connections, disk full) and the
# operator's interventions (57P: shut down, crashed, starting up). And a serialization
# failure (40001): the service's transactions never conflict with each other in a way that
# raises it (writes are READ COMMITTED, snapshot reads read only), but a read replica
# cancels a read whose snapshot stands in the way of the changes it applies.
_POSTGRES_UNAVAILABLE = ("08", "53", "57P", "40001")


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached or used for now, rather than
    that a statement is wrong: the request may succeed if tried again later."""
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    cause = error.orig
    if isinstance(cause, sqlite3.Error):
        code = getattr(cause, "sqlite_errorcode", None)
        return isinstance(code, int) and code & 0xFF in _SQLITE_UNAVAILABLE
    if isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError):
        # No SQLSTATE: the driver itself failed to connect, or found the connection gone.
        return cause.sqlstate is None or cause.sqlstate.startswith(_POSTGRES_UNAVAILABLE)
    return False


# Write requests on SQLite take the write lock when their transaction begins: a transaction
# that reads first and writes later could otherwise fail with SQLITE_BUSY when another
# writer commits in between, instead of waiting its turn.
_SQLITE_BEGIN_OPTION = "mot_sqlite_begin"


_WAL_ATTEMPTS = 200
_WAL_RETRY_SECONDS = 0.05


def _use_wal(cursor: Any) -> None:
    """Put the file in WAL mode, which it then keeps: the first connection switches it, the
    others find it switched. The switch needs the file to itself and is refused at once
    while another connection has it open (the busy timeout does not apply), so connections
    opening a new file together (replicas starting at once) try again for a few seconds."""
    for attempt in range(_WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode")
            if cursor.fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(_WAL_RETRY_SECONDS)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The driver's own transaction handling is turned off so that BEGIN is ours (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        _use_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit the client saw acknowledged survives a power cut, not only a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_SQLITE_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _configure_postgres(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The service's statements read a few thousand rollup rows at most. Parallel workers
        # cost more to start (10-15 ms) than such a statement takes alone (about 1 ms), and the
        # planner picks them for a union of a few index scans.
        cursor = dbapi_connection.cursor()
        cursor.execute("SET max_parallel_workers_per_gather = 0")
        cursor.close()
        dbapi_connection.commit()  # a SET in a transaction rolled back would be undone


Pooler = Literal["none", "transaction"]
"""What stands between the service and PostgreSQL: nothing, or a pooler (PgBouncer) that
gives each transaction whichever server connection is free."""


def _create_engine(url: str, *, pooler: Pooler, connect_args: dict[str, Any]) -> AsyncEngine:
    backend = make_url(url).get_backend_name()
    options: dict[str, Any] = {}
    if backend == "postgresql":
        options = {"pool_size": 10, "max_overflow": 10, "pool_pre_ping": True}
        if pooler == "transaction":
            # A prepared statement lives in one server connection, and the pooler hands the
            # next transaction another one: the driver must never prepare.
            connect_args = {**connect_args, "prepare_threshold": None}
    # Errors never quote the values bound to a statement: they are client data (client
    # refs, comments), and an error may end up in a log.
    engine = create_async_engine(url, hide_parameters=True, connect_args=connect_args, **options)
    if backend == "sqlite":
        _configure_sqlite(engine)
    elif pooler == "none":
        # A session-level SET would stay behind a pooler on whichever server connection ran
        # it, for other clients; behind one, set it on the role instead.
        _configure_postgres(engine)
    return engine


def _snapshot_reads(engine: AsyncEngine) -> AsyncEngine:
    if engine.dialect.name != "postgresql":
        return engine  # SQLite's read transaction is a snapshot already
    # Every statement of a read sees one snapshot: a figure added up from several
    # statements (rollups, pending deltas, edge days) never sees half of a change.
    return engine.execution_options(isolation_level="REPEATABLE READ")


REPLICA_CONNECT_TIMEOUT_SECONDS = 3
"""How long a read waits for the replica to answer before it is read from the primary."""
REPLICA_RETRY_SECONDS = 10.0
"""After the replica failed to answer, reads go to the primary this long before the
replica is tried again: a replica down costs one wait, not one wait a request."""


class Database:
    """The engines and session factories of one service instance.

    `write_sessions` and `read_sessions` are the primary's: everything that writes, and
    the reads that must see what was just written (a key just created, a touchpoint just
    posted, an idempotency key just claimed). `replica_sessions` read from the replica
    when one is configured (figures and lists, which may lag it), else from the primary.
    """

    def __init__(self, url: str, *, read_url: str | None = None, pooler: Pooler = "none") -> None:
        self.url = async_url(url)
        self.backend = make_url(self.url).get_backend_name()
        self.engine = _create_engine(self.url, pooler=pooler, connect_args={})
        write_engine = self.engine.execution_options(**{_SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        self.read_sessions = async_sessionmaker(
            _snapshot_reads(self.engine), expire_on_commit=False
        )
        self.write_sessions = async_sessionmaker(write_engine, expire_on_commit=False)
        self.replica_engine: AsyncEngine | None = None
        self.replica_sessions = self.read_sessions
        self._replica_failed_at: float | None = None
        if read_url is not None:
            self.replica_engine = _create_engine(
                async_url(read_url),
                pooler=pooler,
                connect_args={"connect_timeout": REPLICA_CONNECT_TIMEOUT_SECONDS},
            )
            replica_reads = _snapshot_reads(self.replica_engine)
            self.replica_sessions = async_sessionmaker(replica_reads, expire_on_commit=False)

    @classmethod
    def of(cls, settings: Settings) -> "Database":
        """The database the settings name, with their replica and pooler."""
        return cls(
            settings.database_url,
            read_url=settings.read_database_url,
            pooler=settings.database_pooler,
        )

    @asynccontextmanager
    async def lagging_read(self) -> AsyncIterator[AsyncSession]:
        """A read session on the replica, or on the primary while the replica does not answer.

        What it reads may be as old as the replica's lag; its statements still share one
        snapshot, the replica's, since a replica applies whole transactions.
        """
        if self.replica_sessions is not self.read_sessions and not self._replica_resting():
            session = self.replica_sessions()
            try:
                await session.connection()
            except sa_exc.DBAPIError as error:
                await session.close()
                if not is_unavailable(error):
                    raise
                self._replica_failed_at = time.monotonic()
                logger.warning(
                    "the read replica does not answer (%s): reading from the primary for %.0f s",
                    type(error.orig).__name__,
                    REPLICA_RETRY_SECONDS,
                )
            else:
                async with session:
                    yield session
                return
        async with self.read_sessions() as session:
            yield session

    def _replica_resting(self) -> bool:
        failed_at = self._replica_failed_at
        return failed_at is not None and time.monotonic() - failed_at < REPLICA_RETRY_SECONDS

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.replica_engine is not None:
            await self.replica_engine.dispose()


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _session(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with factory() as session:
        async for yielded in _unit_of_work(session):
            yield yielded


async def _unit_of_work(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the handler succeeds, rolled back otherwise."""
    database: Database = request.app.state.database
    factory = database.read_sessions if request.method in _READ_METHODS else database.write_sessions
    async for session in _session(factory):
        yield session


async def get_write_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A writing session whatever the method: for pages whose GET records something."""
    database: Database = request.app.state.database
    async for session in _session(database.write_sessions):
        yield session


async def get_replica_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A reading session that may lag the primary by the replica's replication delay."""
    database: Database = request.app.state.database
    async with database.lagging_read() as session:
        async for yielded in _unit_of_work(session):
            yield yielded


# scope="function": the commit happens before the response is sent, so an acknowledged
# write is a committed write.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
WriteSessionDep = Annotated[AsyncSession, Depends(get_write_session, scope="function")]
# For figures and lists, never for a read that must see the caller's own write: on the
# replica when one is configured, so they may lag the primary.
ReplicaSessionDep = Annotated[AsyncSession, Depends(get_replica_session, scope="function")]
