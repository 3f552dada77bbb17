"""A live feed of committed audit records for one subscriber, with a bounded buffer that drops the oldest."""

from __future__ import annotations

from collections import deque

import anyio

from gateway_core.audit.records import AuditRecord


class Subscription:
    """One subscriber's bounded buffer of committed records; iterate it to wait for the next one.

    Attributes:
        lost: how many records were dropped because this subscriber read too slowly.
    """

    def __init__(self, size: int) -> None:
        self._buffer: deque[AuditRecord] = deque(maxlen=size)
        self._arrived = anyio.Event()
        self.lost = 0

    def push(self, records: list[AuditRecord]) -> None:
        """Add newly committed records, dropping the oldest unread ones if the buffer is full."""
        for record in records:
            if len(self._buffer) == self._buffer.maxlen:
                self.lost += 1
            self._buffer.append(record)
        if records:
            self._arrived.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> AuditRecord:
        while not self._buffer:
            if self._arrived.is_set():
                self._arrived = anyio.Event()
            await self._arrived.wait()
        return self._buffer.popleft()

    async def next_batch(self) -> list[AuditRecord]:
        """Wait for at least one record, then take every buffered one, oldest first."""
        batch = [await self.__anext__()]
        batch.extend(self._buffer)
        self._buffer.clear()
        return batch
