"""The stores tests run on: SQLite in a temporary file, and a fresh schema on the
PostgreSQL server of TEST_DATABASE_URL (skipped, saying why, only when it is unreachable)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.adapters.store_postgres import PostgresStore, quote_ident
from bot.adapters.store_sqlite import SQLiteStore

AnyStore = SQLiteStore | PostgresStore

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class Backend:
    """Where one test's data lives, and a way to open more stores on it (more replicas)."""

    name: str
    _open: Callable[[], AnyStore]
    opened: list[AnyStore] = field(default_factory=list)

    def open(self) -> AnyStore:
        """A new store on the same database, not yet migrated."""
        store = self._open()
        self.opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


async def _server() -> tuple[str, asyncpg.Connection]:
    """TEST_DATABASE_URL and a connection to it; the test is skipped, saying why, when the
    server cannot be reached."""
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    try:
        return url, await asyncpg.connect(url, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        pytest.skip(
            f"PostgreSQL at {without_password(url)} unreachable: {exc!r}; "
            "start it or point TEST_DATABASE_URL at one"
        )


@contextlib.asynccontextmanager
async def open_backend(kind: str, tmp_path: Path) -> AsyncIterator[Backend]:
    """A fresh place for one test's data on `kind` (sqlite | postgres)."""
    if kind == "sqlite":
        path = str(tmp_path / "store.db")
        sqlite = Backend("sqlite", lambda: SQLiteStore(path))
        yield sqlite
        await sqlite.close_all()
        return

    url, admin = await _server()
    schema = f"t_{uuid.uuid4().hex}"
    postgres = Backend("postgres", lambda: PostgresStore(url, schema=schema))
    try:
        await admin.execute(f"CREATE SCHEMA {quote_ident(schema)}")
        yield postgres
    finally:
        await postgres.close_all()
        await admin.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        await admin.close()


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """The URL of a new database on the TEST_DATABASE_URL server, for app processes of
    their own (skipped, saying why, when it is unreachable); dropped at the end."""
    url, admin = await _server()
    name = f"t_{uuid.uuid4().hex}"
    try:
        await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        # FORCE: connections of an app killed with -9 may not be gone yet.
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        await admin.close()
