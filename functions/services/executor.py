"""The executor seam: the one way the server has plugin code run, always elsewhere.

Callers (the runtime, the valves and functions services, the catalog) use only the
methods of `Executor` (its types and errors live in functions.seam, apart from both
sides); its implementations (functions.workers.executor) are the only code that
knows processes, and this module is the one place that builds them. The server's
executor is "process": sandboxed worker processes. "inline" runs the same worker
code in this process and is for unit tests only: the setting is fixed in
settings.py, and no environment variable changes it.

Sync callers (Django views, services) reach the async methods through
`run_blocking`, which runs them on a loop of its own in a background thread, so a
request thread never needs an event loop and the workers it starts are reused.
"""

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future

from django.conf import settings

# The seam's types, importable from here as callers always have.
from functions.seam import (  # noqa: F401
    CallTimeout,
    Executor,
    ExecutorError,
    InvalidStoredValves,
    LimitExceeded,
    PluginFailed,
    WorkerCrashed,
    WorkerError,
)
from functions.workers.executor import InlineExecutor, ProcessExecutor

_executors: dict[str, Executor] = {}
_lock = threading.Lock()


def get_executor() -> Executor:
    """Return the process's executor of the configured kind, created on first use."""
    kind = settings.FUNCTIONS_EXECUTOR
    with _lock:
        if kind not in _executors:
            _executors[kind] = _make_executor(kind)
        return _executors[kind]


def _make_executor(kind: str) -> Executor:
    if kind == "process":
        return ProcessExecutor.from_settings()
    if kind == "inline":
        return InlineExecutor.from_settings()
    raise ValueError(f"FUNCTIONS_EXECUTOR must be 'process' (or 'inline' in tests), not {kind!r}")


# Sync callers


class _BlockingLoop:
    """An event loop in a daemon thread, for sync code that needs a worker call."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self.loop.run_forever, name="executor-sync", daemon=True)
        thread.start()

    def submit(self, coro) -> Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)


_blocking: _BlockingLoop | None = None


def run_blocking[T](make: Callable[[Executor], Awaitable[T]], timeout: float = 60.0) -> T:
    """Run `make(executor)` to completion from sync code and return its result."""
    global _blocking
    executor = get_executor()
    with _lock:
        if _blocking is None:
            _blocking = _BlockingLoop()
    if _running_loop() is _blocking.loop:
        raise RuntimeError("run_blocking() called from its own loop would wait for itself")
    return _blocking.submit(_awaited(make, executor)).result(timeout)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _awaited(make, executor):
    return await make(executor)


def reset() -> None:
    """Stop the workers the sync loop started and forget every executor (tests)."""
    with _lock:
        executors = list(_executors.values())
        _executors.clear()
    if _blocking is not None:
        for executor in executors:
            _blocking.submit(executor.stop()).result(30)
