"""The SQLite database under the data directory: connection, pragmas and transactions."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from appliance.store import migrations

DEFAULT_DATA_DIR = Path("/data/bfr")
DB_NAME = "bfr.sqlite3"
# Long enough for `bfr export` and the web process to take turns at writing, short enough that a
# wedged writer shows up as an error instead of a silent hang at the treatment table.
BUSY_TIMEOUT_S = 5.0

_Row = TypeVar("_Row")


class StoreError(Exception):
    """The database cannot be used: missing, unreadable, newer than this software, or not WAL."""


class Store:
    """One open clinic database.

    All access goes through one connection behind a re-entrant lock, so the web server's threads
    and the session runner can share a Store. Writes happen in `transaction()`, which commits
    before it returns: anything a caller reports as done is on disk.

    Durability settings, and why:
    - WAL journal: readers (the UI, `bfr export`) never block the writer recording a session.
    - synchronous=FULL: in WAL mode NORMAL fsyncs only at checkpoints, so the last transactions
      before a power cut can vanish even though the app already said "saved". FULL fsyncs the WAL
      at every commit. That costs one fsync per write; the appliance writes a few events a second
      and a trace chunk every few seconds, far below what an SD card or SSD sustains.
    """

    def __init__(
        self, conn: sqlite3.Connection, data_dir: Path, wall: Callable[[], float] = time.time
    ) -> None:
        self._conn = conn
        self.data_dir = data_dir
        self._wall = wall
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(
        cls,
        data_dir: Path | str = DEFAULT_DATA_DIR,
        *,
        create: bool = True,
        wall: Callable[[], float] = time.time,
    ) -> Store:
        """Open (and with `create`, make and migrate) the database in `data_dir`."""
        data_dir = Path(data_dir)
        path = data_dir / DB_NAME
        if create:
            data_dir.mkdir(parents=True, exist_ok=True)
        elif not path.is_file():
            raise StoreError(f"no database in {data_dir} (expected {path})")
        try:
            conn = connect(path, create=create)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        try:
            migrations.migrate(conn)
        except migrations.MigrationError as exc:
            conn.close()
            raise StoreError(f"{path}: {exc}") from exc
        return cls(conn, data_dir, wall)

    @property
    def path(self) -> Path:
        return self.data_dir / DB_NAME

    def now(self) -> float:
        """Wall-clock seconds since the epoch, injectable for simulated sessions and tests."""
        return self._wall()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed when the block ends; nested blocks are savepoints.

        BEGIN IMMEDIATE takes the write lock up front, so two processes never both read and then
        fail to upgrade to a write half-way through.
        """
        with self._lock:
            if self._depth:
                name = f"nested_{self._depth}"
                self._conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute(f"ROLLBACK TO {name}")
                    self._conn.execute(f"RELEASE {name}")
                    raise
                else:
                    self._conn.execute(f"RELEASE {name}")
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same snapshot (used by exports)."""
        with self._lock:
            if self._depth:
                yield self._conn
                return
            self._conn.execute("BEGIN")
            self._depth = 1
            try:
                yield self._conn
            finally:
                self._depth = 0
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def integrity_problems(self) -> list[str]:
        """What `PRAGMA integrity_check` finds; empty when the database is sound."""
        rows = self.query("PRAGMA integrity_check")
        problems = [row[0] for row in rows]
        return [] if problems == ["ok"] else problems

    def schema_version(self) -> int:
        with self._lock:
            return migrations.schema_version(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """A connection with the appliance's pragmas; every connection must set them itself."""
    mode = "rwc" if create else "rw"
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode={mode}",
        uri=True,
        isolation_level=None,  # transactions are explicit: see Store.transaction
        check_same_thread=False,  # Store serialises access with its own lock
        timeout=BUSY_TIMEOUT_S,
    )
    try:
        conn.row_factory = sqlite3.Row
        (journal,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(journal).lower() != "wal":
            raise StoreError(f"{path}: cannot switch to WAL journal (got {journal!r})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def open_store(
    data_dir: Path | str = DEFAULT_DATA_DIR,
    *,
    create: bool = True,
    wall: Callable[[], float] = time.time,
) -> Store:
    """Open the clinic database in `data_dir`; see `Store.open`."""
    return Store.open(data_dir, create=create, wall=wall)


def insert(conn: sqlite3.Connection, table: str, columns: Mapping[str, Any]) -> int:
    """INSERT one row of `columns` into `table` (a literal of the caller); return its id."""
    names = ", ".join(columns)
    marks = ", ".join("?" * len(columns))
    cur = conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(columns.values()))
    return int(cur.lastrowid or 0)


def and_where(
    sql: str, params: Sequence[Any], conditions: Mapping[str, Any]
) -> tuple[str, list[Any]]:
    """`sql` with ` AND <condition>` for each condition whose parameter is not None."""
    params = list(params)
    for condition, value in conditions.items():
        if value is not None:
            sql += f" AND {condition}"
            params.append(value)
    return sql, params


def from_row(cls: type[_Row], row: sqlite3.Row, **decode: Callable[[Any], Any]) -> _Row:
    """The dataclass `cls` from the columns named like its fields, some passed through `decode`."""
    values = {field.name: row[field.name] for field in dataclasses.fields(cls)}
    for name, convert in decode.items():
        values[name] = convert(values[name])
    return cls(**values)
