"""Upserts in either database: the INSERT is built in the
connection's dialect, so ON CONFLICT compiles there."""

from types import SimpleNamespace

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from sentiment.storage.dialects import insert_for, is_postgres
from sentiment.storage.tables import AlertRow


def connection(name: str) -> SimpleNamespace:
    return SimpleNamespace(dialect=SimpleNamespace(name=name))


@pytest.mark.parametrize(
    ("name", "dialect", "statement_type"),
    [("postgresql", postgresql.dialect(), postgresql.Insert), ("sqlite", sqlite.dialect(), sqlite.Insert)],
)
def test_an_upsert_is_built_in_the_connections_dialect(
    name: str, dialect: object, statement_type: type
) -> None:
    statement = insert_for(connection(name), AlertRow)  # type: ignore[arg-type]
    assert isinstance(statement, statement_type)
    sql = str(statement.on_conflict_do_nothing(index_elements=["active_key"]).compile(dialect=dialect))
    assert "ON CONFLICT (active_key) DO NOTHING" in sql


def test_only_postgresql_is_postgres() -> None:
    assert is_postgres(connection("postgresql"))  # type: ignore[arg-type]
    assert not is_postgres(connection("sqlite"))  # type: ignore[arg-type]
