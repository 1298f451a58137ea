"""Opening the database: SQLite (WAL) by default, PostgreSQL by URL; migrations by Alembic."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from storage.crypto import Keyring
from storage.sealing import KEYRING

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")


class DatabaseUnavailable(RuntimeError):
    """The database stayed locked or unreachable past the retry budget."""


def open_engine(url: str) -> Engine:
    """An engine for the URL; SQLite gets WAL, a busy timeout and write-locking transactions."""
    if url.startswith("sqlite"):
        _ensure_parent(url)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin)
        _WRITER[engine] = WriterLock()
        return engine
    for scheme in ("postgresql://", "postgres://"):  # postgres:// as Heroku and libpq write it
        if url.startswith(scheme):
            url = "postgresql+psycopg://" + url.removeprefix(scheme)
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


POSTGRESQL_WRITERS = 4


def concurrent_writers(engine: Engine) -> int:
    """How many threads of one kind of work should write at once: one on SQLite, which lets
    one transaction write at a time anyway, several on PostgreSQL."""
    return 1 if engine.dialect.name == "sqlite" else POSTGRESQL_WRITERS


def _ensure_parent(url: str) -> None:
    path = url.split("///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (below), so the write lock is taken at the start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# The execution option of a transaction that only reads (`reading`).
READ_ONLY = "gateway_read_only"


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE: two writers queue on the lock instead of failing on a read-to-write upgrade.
    # A reading transaction takes no lock: in WAL mode it reads beside the writer.
    read_only = connection.get_execution_options().get(READ_ONLY)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


# SQLite lets one transaction write at a time, and a connection that finds the lock taken
# sleeps in growing steps (up to 100 ms) before it looks again, so threads of one process that
# wait there leave the database idle most of the time. Threads of one process queue on this
# lock instead, and the next one starts the moment the last one commits. (Other processes on
# the same file still wait in SQLite's busy handler.)
class WriterLock:
    """A reentrant lock whose urgent waiters (storing what a provider is waiting to have
    acknowledged) go before the others (processing, sending), which otherwise take turns in
    no particular order."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._urgent = 0

    def acquire(self, urgent: bool = False) -> None:
        me = threading.get_ident()
        with self._condition:
            if self._owner == me:
                self._depth += 1
                return
            self._urgent += urgent
            try:
                while self._owner is not None or (self._urgent and not urgent):
                    self._condition.wait()
            finally:
                self._urgent -= urgent
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._condition:
            if self._owner != threading.get_ident():
                raise RuntimeError("released by a thread that does not hold it")
            self._depth -= 1
            if not self._depth:
                self._owner = None
                self._condition.notify_all()

    @property
    def urgent_waiting(self) -> bool:
        """Whether an urgent writer waits for the lock (read without taking it: a hint)."""
        return self._urgent > 0

    @contextmanager
    def held(self, urgent: bool = False) -> Iterator[None]:
        self.acquire(urgent)
        try:
            yield
        finally:
            self.release()


_WRITER: weakref.WeakKeyDictionary[Engine, WriterLock] = weakref.WeakKeyDictionary()


def session_factory(engine: Engine, keyring: Keyring | None = None) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit; with the keyring that seals and
    opens the values that could identify an applicant (storage.sealing)."""
    return sessionmaker(engine, expire_on_commit=False,
                        info={KEYRING: keyring} if keyring is not None else {})


@contextmanager
def transaction(sessions: sessionmaker[Session], urgent: bool = False) -> Iterator[Session]:
    """One unit of work: commit at the end, roll back on any error. `urgent`: on SQLite, it
    goes before the waiting transactions that are not (a webhook's delivery, whose provider
    waits for the answer, before the processing of earlier ones)."""
    with _writer_lock(sessions, urgent), sessions() as session, session.begin():
        yield session


@contextmanager
def reading(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction that only reads: on SQLite it neither waits for nor holds the write lock,
    so lookups run beside a writer (WAL). Nothing is committed: closing rolls it back."""
    with sessions() as session:
        session.connection(execution_options={READ_ONLY: True})  # begins the transaction
        yield session


def urgent_writer_waiting(sessions: sessionmaker[Session]) -> bool:
    """Whether an urgent transaction of this process waits for SQLite's write lock (a long
    unit of work can then commit what it has done and let it go first)."""
    lock = _WRITER.get(sessions.kw.get("bind"))  # type: ignore[arg-type]
    return lock is not None and lock.urgent_waiting


def _writer_lock(sessions: sessionmaker[Session], urgent: bool) -> AbstractContextManager[Any]:
    """The lock this process's writers of an SQLite database queue on (none for PostgreSQL)."""
    bind = sessions.kw.get("bind")
    lock = _WRITER.get(bind) if isinstance(bind, Engine) else None
    return lock.held(urgent) if lock is not None else nullcontext()


def with_retry(work: Callable[[], T], attempts: int = 6, first_delay: float = 0.2) -> T:
    """Run a unit of work, retrying while the database is locked or briefly unreachable."""
    delay = first_delay
    for attempt in range(attempts):
        try:
            return work()
        except (OperationalError, PoolTimeout) as error:
            if attempt == attempts - 1:
                raise DatabaseUnavailable(str(error.__cause__ or error)) from error
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


def alembic_config(url: str) -> Config:
    """Alembic's configuration, pointing at this package's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, keyring: Keyring | None = None) -> None:
    """Bring the schema to the newest migration (`gateway db upgrade`); migrations that seal
    existing values (0004_security) need the keyring."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes[KEYRING] = keyring
        command.upgrade(config, "head")


class NoDatabase(RuntimeError):
    """There is no gateway database where the settings point (a mistyped data folder)."""


def require_database(url: str) -> None:
    """Raise NoDatabase unless the URL holds a gateway database already: a command that only
    reads must not make an empty one (and a new key) where a mistyped setting points, and
    then report an empty queue."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:" and not Path(path).is_file():
            raise NoDatabase(f"no gateway database at {path}")
        if not path or path == ":memory:":
            return
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    if current is None:
        raise NoDatabase(f"no gateway database in {engine.url.render_as_string()}")


def needs_upgrade(engine: Engine) -> bool:
    """Whether the database is behind the newest migration (or empty)."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current != head
