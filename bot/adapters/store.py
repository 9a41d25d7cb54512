"""Choosing the store from `DATABASE_URL`."""

from __future__ import annotations

from bot.ports import Store


def open_store(url: str) -> Store:
    if url.startswith("sqlite:"):
        from bot.adapters.store_sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    if url.startswith(("postgresql:", "postgres:")):
        from bot.adapters.store_postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(f"DATABASE_URL must start with sqlite: or postgresql:, not {url[:12]!r}")
