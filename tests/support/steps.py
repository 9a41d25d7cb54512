"""`ports.Steps` in memory: one instance is one job's journal. A test that wants a retry
on another replica builds a new adapter and hands it the same instance, as the store hands
the job's progress to whichever worker claims it next."""

from __future__ import annotations


class MemorySteps:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.writes: list[tuple[str, str]] = []

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    async def put(self, key: str, value: str) -> None:
        self.values[key] = value
        self.writes.append((key, value))
