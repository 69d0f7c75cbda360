"""The results store refuses databases it cannot read, with one clear line."""

from __future__ import annotations

import sqlite3

import pytest

from transferkit.core.errors import UserError
from transferkit.core.results import DB_NAME, Cell, ResultsStore, cell_id


def test_round_trip_and_idempotent_add(tmp_path) -> None:
    store = ResultsStore(str(tmp_path))
    config = {"model": "m", "strategy": {"name": "tfidf"}}
    store.add(Cell(cell_id(config), {"strategy": "tfidf"}, config))
    store.add(Cell(cell_id(config), {"strategy": "tfidf"}, config))
    store.start(cell_id(config))
    store.update(cell_id(config), status="done", metrics={"eval": {"accuracy": 0.9}})
    (cell,) = store.cells()
    assert cell.status == "done" and cell.attempts == 1 and cell.metrics["eval"]["accuracy"] == 0.9


def test_incompatible_schema_version_is_a_clear_error(tmp_path) -> None:
    ResultsStore(str(tmp_path))
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(UserError, match="schema version 999.*new directory") as info:
        ResultsStore(str(tmp_path))
    assert "\n" not in str(info.value)


def test_not_a_database_and_missing_store(tmp_path) -> None:
    (tmp_path / DB_NAME).write_text("this is not sqlite")
    with pytest.raises(UserError, match="not a readable transferkit results database"):
        ResultsStore(str(tmp_path))
    with pytest.raises(UserError, match="no results in"):
        ResultsStore(str(tmp_path / "missing"), create=False)
