"""The results store: one row per grid cell in SQLite (stdlib, WAL mode).

Written by ``experiments`` (grid runner), read by ``reporting``; both go through this
class so the schema lives in one place.  A cell is identified by ``cell_id``, the hash of
its fully expanded config, so re-running a grid finds finished cells and skips them.

Statuses: ``pending`` -> ``running`` -> ``done`` | ``failed`` (or ``pruned``: a ``transferkit tune`` trial
stopped early).  A cell left ``running`` by a killed grid is retried like a failed one.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from transferkit.core.errors import UserError

SCHEMA_VERSION = 1
DB_NAME = "results.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    cell_id TEXT PRIMARY KEY,
    axes TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    metrics TEXT,
    history TEXT,
    train_seconds REAL,
    eval_seconds REAL,
    peak_rss_mb REAL,
    trainable_parameters INTEGER,
    total_parameters INTEGER,
    run_dir TEXT,
    command TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL
);
"""


def cell_id(config: dict[str, Any]) -> str:
    """Stable hash of a cell's expanded config (key order does not matter)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Cell:
    """One row of the store."""

    cell_id: str
    axes: dict[str, Any]
    config: dict[str, Any]
    status: str = "pending"
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float | None = None
    eval_seconds: float | None = None
    peak_rss_mb: float | None = None
    trainable_parameters: int | None = None
    total_parameters: int | None = None
    run_dir: str | None = None
    command: str | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None


_JSON_FIELDS = ("axes", "config", "metrics", "history")


class ResultsStore:
    """SQLite-backed store of grid cells.

    >>> store = ResultsStore("grid-out")                      # doctest: +SKIP
    >>> store.add(Cell(cell_id(cfg), {"strategy": "tfidf"}, cfg))
    >>> [c.status for c in store.cells()]
    """

    def __init__(self, directory: str, create: bool = True) -> None:
        self.path = os.path.join(directory, DB_NAME)
        if not create and not os.path.isfile(self.path):
            raise UserError(f"no results in {directory} (expected {DB_NAME}); run `transferkit grid` first")
        os.makedirs(directory, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise UserError(f"{self.path}: results schema version {row[0]}, this transferkit reads version "
                                f"{SCHEMA_VERSION}; re-run the grid into a new directory")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:  # one transaction
                yield db
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path}: not a readable transferkit results database ({exc})") from None
        finally:
            db.close()

    def add(self, cell: Cell) -> None:
        """Insert a cell unless one with the same id exists (its status is kept)."""
        values = self._row(cell)
        with self._connect() as db:
            db.execute(f"INSERT OR IGNORE INTO cells ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                       list(values.values()))

    def update(self, cell_id_: str, **fields: Any) -> None:
        values = {k: json.dumps(v, default=str) if k in _JSON_FIELDS else v for k, v in fields.items()}
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self._connect() as db:
            db.execute(f"UPDATE cells SET {assignments} WHERE cell_id = ?", [*values.values(), cell_id_])

    def start(self, cell_id_: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE cells SET status = 'running', attempts = attempts + 1, started_at = ?, error = NULL "
                       "WHERE cell_id = ?", (time.time(), cell_id_))

    def cells(self, status: str | None = None) -> list[Cell]:
        query, args = "SELECT * FROM cells", ()
        if status is not None:
            query, args = query + " WHERE status = ?", (status,)
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(query + " ORDER BY rowid", args).fetchall()
        return [self._cell(dict(zip(row.keys(), row, strict=True))) for row in rows]

    @staticmethod
    def _cell(row: dict[str, Any]) -> Cell:
        return Cell(**{k: json.loads(v) if k in _JSON_FIELDS and v is not None else v for k, v in row.items()})

    @staticmethod
    def _row(cell: Cell) -> dict[str, Any]:
        return {k: json.dumps(v, default=str) if k in _JSON_FIELDS else v for k, v in cell.__dict__.items()}
