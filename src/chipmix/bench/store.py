"""The results store: one SQLite file holding every measurement with what produced it.

Two tables. ``runs``: one row per bench invocation (date, host, device, chip, driver and
library versions, suite, command line, when it finished). ``results``: one row per
measurement (kind, name, dtype, shapes, seconds, FLOPs, bytes, extra figures, date), each
pointing at its run.

Safe against concurrent writers and interrupted runs: the file is in write-ahead-log mode
(readers never block writers, writers queue on ``busy_timeout``), every result is its own
``BEGIN IMMEDIATE … COMMIT`` transaction, so a Ctrl-C or a SIGKILL between two results
loses nothing that was reported done, and a kill inside one leaves the database as it was
before it (SQLite's atomic commit; https://www.sqlite.org/wal.html). ``synchronous=NORMAL``
keeps WAL commits durable against a process crash (only a power loss may drop the last
ones).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chipmix.errors import FileFormatError

__all__ = ["DB_ENV", "SCHEMA_VERSION", "Result", "RunInfo", "Store", "StoredResult", "default_db"]

SCHEMA_VERSION = 1
DB_ENV = "CHIPMIX_BENCH_DB"
"""Environment variable naming the results file (same as ``--db``)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    host TEXT NOT NULL,
    device_kind TEXT NOT NULL,
    device_name TEXT NOT NULL,
    chip TEXT NOT NULL,
    suite TEXT NOT NULL,
    versions TEXT NOT NULL,
    device TEXT NOT NULL,
    command TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    created TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    dtype TEXT NOT NULL,
    shape TEXT NOT NULL,
    median_s REAL NOT NULL,
    min_s REAL NOT NULL,
    repeats INTEGER NOT NULL,
    flops REAL NOT NULL,
    bytes REAL NOT NULL,
    extra TEXT NOT NULL,
    method TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS results_run ON results(run_id);
"""


def default_db() -> Path:
    """``$CHIPMIX_BENCH_DB``, else ``$XDG_DATA_HOME/chipmix/bench.sqlite``
    (``~/.local/share/chipmix/bench.sqlite``)."""
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "chipmix" / "bench.sqlite"


@dataclass(frozen=True, kw_only=True, slots=True)
class Result:
    """One measurement, as a microbenchmark or the end-to-end step reports it."""

    kind: str
    """``matmul``, ``attention``, ``copy``, ``norm``, ``elementwise``, ``collective``,
    ``e2e``."""
    name: str
    """What exactly: ``square``, ``qkv``, ``mlp_in``, ``sdpa_causal``, ``all_reduce``, …"""
    dtype: str
    shape: dict[str, Any]
    """The sizes that define the work (m, k, n; batch, heads, seq_len; bytes; model)."""
    median_s: float
    """Median seconds per call."""
    min_s: float
    repeats: int
    flops: float = 0.0
    """Useful FLOPs per call (0 for memory-bound and communication benchmarks)."""
    bytes: float = 0.0
    """Bytes moved per call (memory traffic, or the message size of a collective)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Derived figures: bus bandwidth, tokens/s, MFU, loss."""
    method: str = ""
    """How the time was taken (`chipmix.bench.timing`: ``cuda-events``, ``host-timer``);
    empty for results stored before the method was recorded (a host timer around calls
    between synchronizations, fresh inputs per sample)."""

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.median_s if self.median_s > 0 else 0.0

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.median_s if self.median_s > 0 else 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class RunInfo:
    """What a bench run ran on."""

    device_kind: str
    device_name: str
    chip: str
    suite: str
    versions: dict[str, str]
    device: dict[str, Any]
    """The device's full description (`Device.info`)."""
    command: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredResult:
    """A result read back, with its run's device and versions."""

    id: int
    run_id: int
    created: str
    chip: str
    device_kind: str
    device_name: str
    versions: dict[str, str]
    device: dict[str, Any]
    result: Result


class Store:
    """The SQLite results file. Use as a context manager, or call `close`.

    ``readonly``: open a file without writing to it (no schema upgrade; for a file without
    a write-ahead log, nothing beside it either: SQLite's ``immutable`` URI flag), as
    ``validate --from-bench`` reads a store kept under version control."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self._methods = True
        if readonly:
            self._open_readonly()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 30000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise FileFormatError(f"{self.path}: not a chipmix results file ({exc})") from None
        self._create()

    def _open_readonly(self) -> None:
        # immutable: no lock, no -wal/-shm files beside a store kept under version control.
        # A store with a write-ahead log (still written, or killed before a checkpoint)
        # keeps committed results there: read it through SQLite's read-only mode instead.
        wal = self.path.with_name(self.path.name + "-wal").exists()
        uri = self.path.resolve().as_uri().replace("file://", "file:", 1)
        uri += "?mode=ro" if wal else "?mode=ro&immutable=1"
        try:
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(results)")}
        except sqlite3.DatabaseError as exc:
            raise FileFormatError(f"{self.path}: not a chipmix results file ({exc})") from None
        if row is None or int(row[0]) != SCHEMA_VERSION:
            raise FileFormatError(f"{self.path}: not a chipmix results file of schema "
                                  f"{SCHEMA_VERSION}")  # fmt: skip
        self._methods = "method" in columns

    def _create(self) -> None:
        try:
            with self._transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if row is None:
                    self._db.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                    )
                elif int(row[0]) != SCHEMA_VERSION:
                    raise FileFormatError(
                        f"{self.path}: results schema {row[0]}, this chipmix reads "
                        f"{SCHEMA_VERSION}; use another --db"
                    )
                columns = {r[1] for r in self._db.execute("PRAGMA table_info(results)")}
                if "method" not in columns:  # a file from before methods were recorded
                    self._db.execute(
                        "ALTER TABLE results ADD COLUMN method TEXT NOT NULL DEFAULT ''"
                    )
        except sqlite3.DatabaseError as exc:
            raise FileFormatError(f"{self.path}: not a chipmix results file ({exc})") from None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- writing ------------------------------------------------------------------------
    def start_run(self, info: RunInfo) -> int:
        """Record a run; its results are added one transaction each with `add`."""
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO runs (started, host, device_kind, device_name, chip, suite, "
                "versions, device, command) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _now(),
                    socket.gethostname(),
                    info.device_kind,
                    info.device_name,
                    info.chip,
                    info.suite,
                    json.dumps(info.versions, sort_keys=True),
                    json.dumps(info.device, sort_keys=True),
                    info.command,
                ),
            )
        return int(cursor.lastrowid or 0)

    def add(self, run_id: int, result: Result) -> int:
        """Store one result, committed before this returns."""
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO results (run_id, created, kind, name, dtype, shape, median_s, "
                "min_s, repeats, flops, bytes, extra, method) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    _now(),
                    result.kind,
                    result.name,
                    result.dtype,
                    json.dumps(result.shape, sort_keys=True),
                    result.median_s,
                    result.min_s,
                    result.repeats,
                    result.flops,
                    result.bytes,
                    json.dumps(result.extra, sort_keys=True),
                    result.method,
                ),
            )
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int) -> None:
        with self._transaction():
            self._db.execute("UPDATE runs SET finished = ? WHERE id = ?", (_now(), run_id))

    # -- reading ------------------------------------------------------------------------
    def results(
        self, *, chip: str | None = None, kind: str | None = None, run_id: int | None = None
    ) -> list[StoredResult]:
        """Stored results, oldest first, filtered by chip, kind or run."""
        query = (
            "SELECT r.id, r.run_id, r.created, r.kind, r.name, r.dtype, r.shape, r.median_s, "
            "r.min_s, r.repeats, r.flops, r.bytes, r.extra, "
            + ("r.method" if self._methods else "''")
            + ", u.chip, u.device_kind, "
            "u.device_name, u.versions, u.device FROM results r JOIN runs u ON u.id = r.run_id"
        )
        where, args = [], []
        for column, value in (("u.chip", chip), ("r.kind", kind), ("r.run_id", run_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if where:
            query += " WHERE " + " AND ".join(where)
        rows = self._db.execute(query + " ORDER BY r.id", args).fetchall()
        return [_stored(row) for row in rows]

    def chips(self) -> list[str]:
        """Chip ids with at least one stored result."""
        rows = self._db.execute(
            "SELECT DISTINCT u.chip FROM runs u JOIN results r ON r.run_id = u.id ORDER BY 1"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def runs(self) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT id, started, finished, host, device_kind, device_name, chip, suite, "
            "versions, command FROM runs ORDER BY id"
        ).fetchall()
        keys = (
            "id started finished host device_kind device_name chip suite versions command"
        ).split()
        out = [dict(zip(keys, row, strict=True)) for row in rows]
        for run in out:
            run["versions"] = json.loads(run["versions"])
        return out

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _stored(row: tuple[Any, ...]) -> StoredResult:
    (rid, run_id, created, kind, name, dtype, shape, median_s, min_s, repeats, flops, nbytes,
     extra, method, chip, device_kind, device_name, versions, device) = row  # fmt: skip
    return StoredResult(
        id=int(rid),
        run_id=int(run_id),
        created=str(created),
        chip=str(chip),
        device_kind=str(device_kind),
        device_name=str(device_name),
        versions=json.loads(versions),
        device=json.loads(device),
        result=Result(
            kind=str(kind),
            name=str(name),
            dtype=str(dtype),
            shape=json.loads(shape),
            median_s=float(median_s),
            min_s=float(min_s),
            repeats=int(repeats),
            flops=float(flops),
            bytes=float(nbytes),
            extra=json.loads(extra),
            method=str(method),
        ),
    )
