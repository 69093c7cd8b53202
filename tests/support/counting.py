"""Count what a request costs: ORM queries, sync_to_async thread hops, generation reads."""

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

from asgiref.sync import SyncToAsync
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fnplatform import state


@dataclass
class Cost:
    queries: list[str] = field(default_factory=list)
    hops: list[str] = field(default_factory=list)
    reads: int = 0


@contextmanager
def cost(*, queries: bool = True) -> Iterator[Cost]:
    """What the block cost: the SQL of Django's connection in this thread (where the test
    client runs a view's hops; not on an event loop, where the ORM cannot run), the name
    of each sync_to_async call, and how many times the database generation was read."""
    seen = Cost()
    original = SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        seen.hops.append(getattr(self.func, "__qualname__", type(self.func).__qualname__))
        return await original(self, *args, **kwargs)

    reads = state.reads
    captured = CaptureQueriesContext(connection) if queries else nullcontext()
    SyncToAsync.__call__ = counting
    try:
        with captured:
            yield seen
    finally:
        SyncToAsync.__call__ = original
        seen.reads = state.reads - reads
    if queries:
        seen.queries = [q["sql"] for q in captured.captured_queries]
