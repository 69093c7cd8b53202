"""The executor seam: where synchronous plugin code runs, never on the event loop.

Callers (the runtime) use only `run()` and `iterate()`. This module's
ThreadExecutor runs sync code in a dedicated thread pool; the isolation issue
adds a worker-process executor behind the same two methods, chosen by settings.
"""

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from django.conf import settings

_DONE = object()


class Executor(Protocol):
    # True for executors that run hooks elsewhere (worker processes): the runtime
    # then hands them whole hook calls (invoke/stream) instead of callables.
    remote: bool

    async def run(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any: ...

    def iterate(self, iterator: Iterator[Any]) -> AsyncIterator[Any]: ...


class ThreadExecutor:
    """Run sync plugin calls in a thread pool of its own, so they never block the loop."""

    remote = False

    def __init__(self, max_workers: int) -> None:
        # A pool separate from asyncio's default one: slow plugins cannot starve
        # Django's own sync_to_async work (the ORM) of threads.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="plugin")

    async def run(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call func(*args, **kwargs) in a worker thread and await its result."""
        loop = asyncio.get_running_loop()
        call = contextvars.copy_context().run
        return await loop.run_in_executor(self._pool, lambda: call(func, *args, **kwargs))

    async def iterate(self, iterator: Iterator[Any]) -> AsyncIterator[Any]:
        """Step a sync iterator one item at a time in a worker thread."""
        # next(it, _DONE) keeps StopIteration from crossing into the coroutine.
        try:
            while True:
                item = await self.run(next, iterator, _DONE)
                if item is _DONE:
                    return
                yield item
        finally:
            close = getattr(iterator, "close", None)
            if callable(close):
                await self.run(close)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


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
        from functions.workers.executor import ProcessExecutor

        return ProcessExecutor.from_settings()
    if kind != "thread":
        raise ValueError(f"FNPLATFORM_EXECUTOR must be 'thread' or 'process', not {kind!r}")
    return ThreadExecutor(max_workers=settings.FUNCTIONS_THREAD_WORKERS)
