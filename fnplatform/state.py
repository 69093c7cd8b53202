"""The database generation, and the process caches it keeps valid.

Every request reads the same few rows again and again: its API key and user, the
model it names, the active filters, each function's report and valves, the user's
user valves, the model settings, the connections. Each server process keeps them in
memory (`cached`), as plain data, valid for one *generation* of the database.

**The generation** is one number in one row (`fnplatform_generation`, id 1). Database
triggers on every table those caches read (`WATCHED`; installed by `install` after
every `migrate`, since SQLite drops a table's triggers when a migration rebuilds it)
add one to it in the same transaction as the change. So every writer moves it: the
services, the admin, management commands, queryset `.update()` and `.delete()`
(which bypass Django's signals), raw SQL, another server process or machine; and the
move commits with the change, or not at all. Columns nobody caches are left out
(`last_used_at`, stamped once a minute; a function's failure log, apart from its
quarantine), so they move nothing.

**Per request** the generation is read once (`acurrent`, memoised for the request's
task and the threads it hands work to; a task serving many requests in turn, such as
a websocket consumer, calls `end_request` between them): one primary-key SELECT, on
the event loop over a connection of this module's own, so it costs no thread hop.
On SQLite that is a `sqlite3` connection, read in a few microseconds (a WAL reader
never waits for a writer); on PostgreSQL one psycopg `AsyncConnection` per event
loop, one round trip awaited without blocking the loop (a dropped one is replaced at
once). A warm request then answers from memory with no other query; a miss (`Miss`)
is loaded once in a thread (`answer`).

**Consistency.** An entry is stored with the generation its request read *before*
loading it, so its data is at least that new; it is used only by requests that read
the very same generation. The bump is part of the change's transaction, so a request
that starts after the commit (in any process sharing the database) reads a new
number, misses, and sees the change: read-your-writes across processes and machines,
with no invalidation message to lose. A request already running when a change
commits finishes with what it read (a request that itself writes, then reads through
the caches, sees what it read at its start). Any change to a watched table empties
every cache of every process (at its next request); they change when staff configure
something or someone signs in, so a single number is enough. On PostgreSQL, writers
to watched tables take turns on the generation row until they commit.

Elsewhere (no request in progress: management commands, admin pages, tests calling
services) each `current()` reads the number through Django's connection; `scope()`
reads it once for a block of work. Databases other than SQLite and PostgreSQL get
no triggers and no caching (every lookup loads).

`settings.FNPLATFORM_STATE_READER` says where requests read the number: "loop" (the
default, as above) or "thread" (through Django's connection, in a thread hop): the
tests that run inside one uncommitted transaction need the latter, as only Django's
connection sees their writes.
"""

import asyncio
import atexit
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

logger = logging.getLogger(__name__)

TABLE = "fnplatform_generation"
TRIGGER_PREFIX = "fnp_gen_"
READ_SQL = f"SELECT value FROM {TABLE} WHERE id = 1"
# Entries per cache space: past it the space starts again, so model ids or keys sent
# by clients cannot grow a process without bound between two changes.
MAX_ENTRIES = 4096


@dataclass(frozen=True)
class Watch:
    """How a watched table moves the generation: any change, but for `ignored` columns
    (an update of only those moves nothing) and, with `only_when_set`, inserted or
    deleted rows whose column is empty."""

    ignored: frozenset[str] = frozenset()
    only_when_set: str | None = None


# The tables whose rows the caches hold (model labels; their auto-created many-to-many
# tables are watched with them).
WATCHED: dict[str, Watch] = {
    "auth.User": Watch(),
    # Stamped at most once a minute, and never read back through a cache.
    "accounts.ApiKey": Watch(ignored=frozenset({"last_used_at"})),
    "accounts.SigninToken": Watch(ignored=frozenset({"last_used_at"})),
    "functions.Function": Watch(),
    "functions.FunctionRevision": Watch(),
    "functions.ModelSettings": Watch(),
    # Only its quarantine is cached; failures are recorded without moving anything.
    "functions.FunctionHealth": Watch(
        ignored=frozenset({"failures", "last_error", "last_traceback", "last_failure_at"}),
        only_when_set="quarantined_at",
    ),
    "valves.FunctionValves": Watch(),
    "valves.UserValves": Watch(),
    "chat.Connection": Watch(),
}

# How many generation reads this process made (the tests count them).
reads = 0


class Miss(Exception):
    """Something a request needs is not cached, and this code runs on the event loop,
    where nothing may be loaded: the caller loads it in a thread (`answer`)."""


# The generation: reading it


def read(using: str = DEFAULT_DB_ALIAS) -> int | None:
    """The generation, through Django's connection (sync); None when there is none."""
    global reads
    if connections[using].vendor not in ("sqlite", "postgresql"):
        return None
    reads += 1
    with connections[using].cursor() as cursor:
        cursor.execute(READ_SQL)
        row = cursor.fetchone()
    return int(row[0]) if row else None


class _SqliteReader:
    """A sqlite3 connection of our own, read from the event loop: a PK lookup on a WAL
    database takes microseconds and never waits for a writer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._name = ""

    def read(self, name: str) -> int | None:
        if name == ":memory:" or "mode=memory" in name:
            return None  # a connection of our own would be another database
        with self._lock:
            if self._conn is None or self._name != name:
                self._open(name)
            try:
                row = self._conn.execute(READ_SQL).fetchone()
            except sqlite3.Error:
                self._close()
                raise
        return int(row[0]) if row else None

    def _open(self, name: str) -> None:
        self._close()
        # mode=rw: a wrong name must not create an empty database.
        uri = name if name.startswith("file:") else f"file:{quote(name)}?mode=rw"
        conn = sqlite3.connect(
            uri,
            timeout=0.5,  # a WAL reader waits only while the database recovers
            isolation_level=None,  # autocommit: each read sees the last commit
            check_same_thread=False,  # the loops of several threads may read (in turns)
            uri=True,
        )
        conn.execute("PRAGMA query_only = 1")
        self._conn, self._name = conn, name

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


class _PostgresReader:
    """One psycopg AsyncConnection per event loop (daphne has one), in autocommit, so
    each read sees the last commit; the read awaits its round trip."""

    def __init__(self) -> None:
        # Held strongly, so a loop's connection is closed by us, never by the collector.
        self._conns: dict[asyncio.AbstractEventLoop, Any] = {}

    async def read(self, params: Callable[[], dict[str, Any]]) -> int | None:
        import psycopg

        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            conn = self._conns.get(loop)
            if conn is None or conn.closed:
                conn = self._conns[loop] = await self._connect(params())
            try:
                cursor = await conn.execute(READ_SQL)
                row = await cursor.fetchone()
                return int(row[0]) if row else None
            except psycopg.OperationalError:
                # Dropped by the server (a restart, an idle timeout): once more, anew;
                # another task may have made this loop's connection anew already.
                if self._conns.get(loop) is conn:
                    self._conns.pop(loop, None)
                with suppress(psycopg.Error):
                    await conn.close()
                if attempt == 2:
                    raise
        return None

    async def _connect(self, params: dict[str, Any]):
        import psycopg

        self._finish_orphans()
        return await psycopg.AsyncConnection.connect(**params, autocommit=True)

    def _finish_orphans(self) -> None:
        # Connections of loops that have closed (each test client request runs on a
        # loop of its own) cannot be awaited any more: close them at the libpq level.
        for loop, conn in list(self._conns.items()):
            if loop.is_closed():
                conn.pgconn.finish()
                self._conns.pop(loop, None)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.pgconn.finish()
        self._conns.clear()


_sqlite = _SqliteReader()
_postgres = _PostgresReader()


@atexit.register
def close() -> None:
    """Close the connections the generation is read over (at exit: none is left open
    on the database for it to see)."""
    with _sqlite._lock:
        _sqlite._close()
    _postgres.close()


_vendors: dict[str, str] = {}


def _vendor(using: str) -> str:
    # Looked up once: connections[using] makes a connection object for each thread.
    if using not in _vendors:
        _vendors[using] = connections[using].vendor
    return _vendors[using]


def _postgres_params(using: str) -> dict[str, Any]:
    params = connections[using].get_connection_params()
    # Django's cursor classes and adapters are for its own connections.
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return params


async def aread(using: str = DEFAULT_DB_ALIAS) -> int | None:
    """The generation, read on the event loop where the settings say so (no hop)."""
    global reads
    if settings.FNPLATFORM_STATE_READER == "thread":
        return await sync_to_async(read)(using)
    vendor = _vendor(using)
    if vendor not in ("sqlite", "postgresql"):
        return None
    reads += 1
    try:
        if vendor == "sqlite":
            return _sqlite.read(connections.settings[using]["NAME"])
        return await _postgres.read(lambda: _postgres_params(using))
    except Exception:
        # The request's own queries will meet (and report) the same trouble.
        logger.warning("Reading the database generation failed", exc_info=True)
        return None


# The generation: one value per request


@dataclass(frozen=True)
class _Memo:
    task: weakref.ref
    generation: int | None


_memo: ContextVar[_Memo | None] = ContextVar("fnplatform_generation_memo", default=None)
_pinned: ContextVar[tuple[int | None] | None] = ContextVar(
    "fnplatform_generation_pinned", default=None
)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def on_loop() -> bool:
    """Whether this code runs on an event loop (where nothing may be loaded)."""
    return _running_loop() is not None


def _memoised() -> _Memo | None:
    """The request's generation, if this code runs for the request that read it: on
    its task, or in a thread it handed work to (sync_to_async copies the context) while
    it waits. A context copied out of a finished request holds a dead memo."""
    memo = _memo.get()
    if memo is None:
        return None
    task = memo.task()
    if task is None or task.done():
        return None
    if _running_loop() is not None and asyncio.current_task() is not task:
        return None
    return memo


async def acurrent() -> int | None:
    """The generation for this request: read once, then memoised for its task."""
    memo = _memoised()
    if memo is not None:
        return memo.generation
    generation = await aread()
    task = asyncio.current_task()
    if task is not None:
        _memo.set(_Memo(weakref.ref(task), generation))
    return generation


def end_request() -> None:
    """Forget this task's generation. A task that serves many requests in turn (a
    websocket consumer) calls it before each, so each reads the generation anew."""
    _memo.set(None)


def current() -> int | None:
    """The generation for sync code: pinned by `scope()`, the request's, or read now.
    Raise Miss on an event loop that has not read it (`acurrent`)."""
    pinned = _pinned.get()
    if pinned is not None:
        return pinned[0]
    memo = _memoised()
    if memo is not None:
        return memo.generation
    if _running_loop() is not None:
        raise Miss("the generation has not been read on this task")
    return read()


@contextmanager
def scope() -> Iterator[int | None]:
    """Pin one generation for a block of sync work (read now unless already known), so
    its lookups cost one read in all."""
    if _pinned.get() is not None:
        yield _pinned.get()[0]
        return
    token = _pinned.set((current(),))
    try:
        yield _pinned.get()[0]
    finally:
        _pinned.reset(token)


async def answer[T](fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run sync `fn` from the caches on the loop; if it misses, run it again, once, in
    a thread (same generation), where it loads what it lacks. `fn` must do nothing
    that matters before it may raise Miss."""
    # Pinned while fn runs on the loop: its lookups need not check the memo's task.
    token = _pinned.set((await acurrent(),))
    try:
        return fn(*args, **kwargs)
    except Miss:
        pass
    finally:
        _pinned.reset(token)
    return await sync_to_async(fn)(*args, **kwargs)


# The caches


class _Cache:
    """Entries by (space, key), all of one generation; a newer one empties them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (generation, spaces) swapped as one, so a reader never mixes two generations.
        self._state: tuple[int | None, dict[str, dict[Hashable, Any]]] = (None, {})

    def get(self, generation: int, space: str, key: Hashable) -> Any:
        held, spaces = self._state
        if generation != held:
            return _ABSENT
        return spaces.get(space, {}).get(key, _ABSENT)

    def put(self, generation: int, space: str, key: Hashable, value: Any) -> None:
        with self._lock:
            held, spaces = self._state
            if held is None or generation > held:
                self._state = (generation, spaces := {})
            elif generation < held:
                return  # loaded for an older generation: only its own request uses it
            entries = spaces.setdefault(space, {})
            if len(entries) >= MAX_ENTRIES:
                entries.clear()
            entries[key] = value

    def clear(self) -> None:
        with self._lock:
            self._state = (None, {})


_ABSENT = object()
_cache = _Cache()


def cached[T](space: str, key: Hashable, load: Callable[[], T]) -> T:
    """The cached value of (space, key) for the current generation, loaded (sync, in a
    thread or sync code) and stored when absent. On the event loop, raise Miss instead
    of loading. Values must be plain data that nobody mutates."""
    generation = current()
    if generation is not None:
        value = _cache.get(generation, space, key)
        if value is not _ABSENT:
            return value
    if _running_loop() is not None:
        raise Miss(f"{space} {key!r}")
    value = load()
    if generation is not None and not _uncommitted():
        _cache.put(generation, space, key, value)
    return value


def _uncommitted() -> bool:
    """Whether this thread is inside a transaction: what it loads may include its own
    uncommitted writes, which a rollback would leave in the cache for good. (With the
    "thread" reader, tests that never commit, the test's transaction stands for the
    database, and the tests forget every cache when it rolls back.)"""
    if settings.FNPLATFORM_STATE_READER == "thread":
        return False
    return connections[DEFAULT_DB_ALIAS].in_atomic_block


def forget() -> None:
    """Drop every cached entry of this process (tests: their transactions roll back)."""
    _cache.clear()


# Installing the table and its triggers


def _watched_tables() -> list[tuple[str, list[str], Watch]]:
    """(table, columns, watch) of every watched model and of its m2m tables."""
    tables = []
    for label, watch in WATCHED.items():
        model = apps.get_model(label)
        tables.append((model._meta.db_table, _columns(model), watch))
        for field in model._meta.local_many_to_many:
            through = field.remote_field.through
            if through._meta.auto_created:
                tables.append((through._meta.db_table, _columns(through), Watch()))
    return tables


def _columns(model) -> list[str]:
    return [f.column for f in model._meta.concrete_fields]


def install(*, using: str = DEFAULT_DB_ALIAS, **_: Any) -> None:
    """Create the generation row and (re)create the triggers; idempotent. Connected to
    post_migrate, so a migration that rebuilt a table (SQLite) gets them back."""
    conn = connections[using]
    if conn.vendor not in ("sqlite", "postgresql"):
        return
    sql = _sqlite_sql if conn.vendor == "sqlite" else _postgres_sql
    with transaction.atomic(using=using), conn.cursor() as cursor:
        for statement in sql(conn.ops.quote_name, _watched_tables()):
            cursor.execute(statement)


def _start_value() -> int:
    # A recreated row starts past every value the old one reached (one per change), so
    # no process mistakes the new row's numbers for those its caches hold.
    return time.time_ns() // 1000


def _sqlite_sql(q, tables) -> Iterator[str]:
    yield f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY, value BIGINT NOT NULL)"
    yield f"INSERT OR IGNORE INTO {TABLE} (id, value) VALUES (1, {_start_value()})"
    bump = f"BEGIN UPDATE {TABLE} SET value = value + 1 WHERE id = 1; END"
    for table, columns, watch in tables:
        for op in ("INSERT", "UPDATE", "DELETE"):
            name = q(f"{TRIGGER_PREFIX}{table}_{op.lower()}")
            when = _when(q, columns, watch, op, differs="IS NOT")
            yield f"DROP TRIGGER IF EXISTS {name}"
            yield f"CREATE TRIGGER {name} AFTER {op} ON {q(table)} FOR EACH ROW {when}{bump}"


def _postgres_sql(q, tables) -> Iterator[str]:
    function = f"{TABLE}_bump"
    yield f"CREATE TABLE IF NOT EXISTS {TABLE} (id integer PRIMARY KEY, value bigint NOT NULL)"
    yield (
        f"INSERT INTO {TABLE} (id, value) VALUES (1, {_start_value()}) ON CONFLICT (id) DO NOTHING"
    )
    yield (
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN UPDATE {TABLE} SET value = value + 1 WHERE id = 1; RETURN NULL; END $$"
    )
    for table, columns, watch in tables:
        # TRUNCATE (a flush) fires no row trigger: it gets a statement trigger of its own.
        for op in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
            name = q(f"{TRIGGER_PREFIX}{table}_{op.lower()}"[:63])
            when = "" if op == "TRUNCATE" else _when(q, columns, watch, op, "IS DISTINCT FROM")
            # A WHEN clause needs a row trigger; without one, once per statement will do.
            each = "ROW" if when else "STATEMENT"
            yield f"DROP TRIGGER IF EXISTS {name} ON {q(table)}"
            yield (
                f"CREATE TRIGGER {name} AFTER {op} ON {q(table)} FOR EACH {each} "
                f"{when}EXECUTE FUNCTION {function}()"
            )


def _when(q, columns: list[str], watch: Watch, op: str, differs: str) -> str:
    """The trigger's WHEN clause ("" for every row)."""
    if op == "UPDATE" and watch.ignored:
        changed = [f"OLD.{q(c)} {differs} NEW.{q(c)}" for c in columns if c not in watch.ignored]
        return f"WHEN ({' OR '.join(changed)}) "
    if op in ("INSERT", "DELETE") and watch.only_when_set:
        row = "NEW" if op == "INSERT" else "OLD"
        return f"WHEN ({row}.{q(watch.only_when_set)} IS NOT NULL) "
    return ""
