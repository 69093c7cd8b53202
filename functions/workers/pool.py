"""The workers of one function (or trust group): started on demand, replaced when dead
or worn out, stopped when idle (functions.workers.executor decides when).

The pieces live in their own modules; their names are re-exported here, where the
rest of the code and the tests have always found them.
"""

import asyncio
import contextlib
import itertools
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from functions.seam import (
    CallTimeout,
    InvalidStoredValves,
    LimitExceeded,
    PluginFailed,
    WorkerCrashed,
    WorkerError,
)
from functions.workers.connection import CallInbox, WorkerConnection, malformed
from functions.workers.limits import ROOT, Limits, exit_reason, process_usage, worker_env
from functions.workers.process import WorkerProcess

__all__ = [
    "ROOT",
    "CallInbox",
    "CallTimeout",
    "InvalidStoredValves",
    "LimitExceeded",
    "Limits",
    "PluginFailed",
    "WorkerConnection",
    "WorkerCrashed",
    "WorkerError",
    "WorkerPool",
    "WorkerProcess",
    "exit_reason",
    "malformed",
    "process_usage",
    "worker_env",
]


class WorkerPool:
    """The workers of one function (or one trust group): N of them, started on demand,
    a dead or worn-out one replaced before the next call, all stopped when idle."""

    def __init__(
        self,
        size: int,
        source_dir: str,
        *,
        limits: Limits | None = None,
        max_calls: int = 1000,
        python: str = sys.executable,
        name: str = "",
        factory: Callable[[], Awaitable[WorkerConnection]] | None = None,
    ) -> None:
        self.size, self.source_dir, self.max_calls = size, source_dir, max_calls
        self.python, self.name = python, name
        self.limits = limits or Limits()
        self.workers: list[WorkerConnection] = []
        self._factory = factory or self._start_process
        self._ids = itertools.count()
        self._lock = asyncio.Lock()
        self.last_used = time.monotonic()
        self.active = 0  # calls (and warm-ups) in progress, their workers starting or not
        self.closed = False

    async def _start_process(self) -> WorkerConnection:
        return await WorkerProcess(self.source_dir, self.limits, python=self.python).start()

    @property
    def busy(self) -> bool:
        return self.active > 0 or any(w.calls for w in self.workers)

    async def _healthy(self) -> list[WorkerConnection]:
        """The workers new calls may go to: never a dead or worn-out one (a worn-out
        worker finishes its calls and is stopped once they are done)."""
        async with self._lock:
            if self.closed:
                raise WorkerCrashed("the function's workers were stopped; try again")
            # Asked once per worker and call: for a process it reads /proc.
            worn = {id(w) for w in self.workers if w.worn_out(self.max_calls)}
            for worker in [w for w in self.workers if id(w) in worn]:
                if not worker.calls:
                    self.workers.remove(worker)
                    await worker.stop()
            fresh = [w for w in self.workers if id(w) not in worn]
            while len(fresh) < self.size:
                worker = await self._factory()
                self.workers.append(worker)
                fresh.append(worker)
            return fresh

    async def start(self) -> None:
        """Start the workers now rather than at the first call."""
        self.active += 1
        try:
            await self._healthy()
        finally:
            self.active -= 1

    async def call(self, request: dict[str, Any], **options: Any) -> AsyncIterator[dict]:
        """Run a call on the least busy worker (WorkerConnection.call)."""
        async for message in self._run("call", request, **options):
            yield message

    async def session(
        self, request: dict[str, Any], batches: AsyncIterator[list], **options: Any
    ) -> AsyncIterator[dict]:
        """Run a stream-hook session on the least busy worker (WorkerConnection.session)."""
        async for message in self._run("session", request, batches, **options):
            yield message

    async def _run(self, kind: str, request: dict[str, Any], *args: Any, **options: Any):
        self.last_used = time.monotonic()
        self.active += 1  # busy from now: the reaper leaves a pool whose worker is starting
        try:
            workers = await self._healthy()
            worker = min(workers, key=lambda w: len(w.calls))
            request = {**request, "id": f"c{next(self._ids)}"}
            messages = getattr(worker, kind)(request, *args, **options)
            async with contextlib.aclosing(messages):
                async for message in messages:
                    yield message
        finally:
            self.active -= 1
            self.last_used = time.monotonic()

    async def stop(self) -> None:
        self.closed = True
        for worker in self.workers:
            await worker.stop()
        self.workers.clear()
