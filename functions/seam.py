"""The executor seam's types, apart from both of its sides.

Callers (functions.services: the runtime, the functions and valves services, the
catalog) hand an executor `PluginCall`s and get values, batches (lists) of `Chunk`s
or of stream-hook results (`ItemFailed` where a hook raised) and these errors back;
its implementations (functions.workers) raise the errors and take the calls.
Neither side imports the other for them: this module depends on neither.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from functions.services.loader import LoadReport


@dataclass
class PluginCall:
    """One plugin prepared for one call, as data: what its worker needs to run it."""

    function_id: str
    report: LoadReport
    source: str
    sha256: str
    name: str = ""
    valves: dict[str, Any] | None = None  # explicit stored values, secrets revealed
    user_valves: dict[str, Any] | None = None  # this user's, for this function only
    priority: int = 0
    environment: str | None = None  # the key of its requirement environment, if any
    timeout: float | None = None  # its own call deadline, if staff set one
    group: str = ""  # its workers: its own (the function id) or a trust group's

    def __post_init__(self) -> None:
        self.name = self.name or self.function_id
        self.group = self.group or f"function:{self.function_id}"

    def has_hook(self, hook: str) -> bool:
        """Whether the plugin defines this hook (a no-op one included)."""
        return hook in self.report.hooks

    def must_call(self, hook: str, data: Any) -> bool:
        """Whether the runtime has to call this hook on this data: the plugin has it, and
        it is not one the load report proves to do nothing (noop_hooks), whose call gives
        back what skipping it does: the data itself, or None (inlet and outlet: unchanged)."""
        if hook not in self.report.hooks:
            return False
        if hook not in self.report.noop_hooks:
            return True
        # Where even a no-op's answer differs from its data: a stream hook returning a
        # falsy event drops it (runtime.apply_stream).
        return hook == "stream" and not data


@dataclass(frozen=True)
class ItemFailed:
    """A stream-hook session's answer for one event whose hook raised there (the
    session goes on): the exception's type name and message."""

    kind: str
    message: str


class Executor(Protocol):
    async def invoke(
        self, call, hook: str, data: Any, context, *, data_name: str | None = "body", id=None
    ) -> Any:
        """Run one hook in the plugin's worker and return its (wire-converted) value."""
        ...

    def stream(self, call, hook: str, data: Any, context, *, id=None) -> AsyncIterator[list]:
        """Run a pipe and yield its answer as lists of Chunks, one list per batch that
        crossed: the first at once, never held back; chunks that piled up behind it
        come together in the next. Never an empty list."""
        ...

    def filter_stream(
        self, call, batches: AsyncIterator[list[dict]], context
    ) -> AsyncIterator[list[Any]]:
        """Run a filter's `stream` hook over one answer as one worker call. For each
        input batch of OpenAI chunk dicts, yield one list of the same length, in order:
        each item the hook's return value for that event (wire-converted), or
        ItemFailed when the hook raised for it (the session goes on). Input batches
        are sent ahead of their answers (pipelining), a bounded number (backpressure);
        each must be answered within the call's timeout, time spent waiting for input
        not counted. A crash, timeout or limit ends it with the seam's error, raised
        from the iterator; an error the input raises is raised as it is. Closing the
        iterator early ends the session where it runs. It closes `batches` when done."""
        ...

    async def valves(
        self, call, which: str, *, values=None, spec=None, user=None
    ) -> dict[str, Any]: ...

    def check(
        self, source: str, *, function_id: str, environment: str | None, saver: Any = None
    ) -> dict: ...

    async def warm(self, calls) -> None: ...

    async def stop(self) -> None: ...


# The seam's errors: what a call may fail with, whoever runs it.


class ExecutorError(Exception):
    """A call could not complete where plugin code runs; the message says why, naming
    the function."""


WorkerError = ExecutorError  # its name where workers raise it


class WorkerCrashed(WorkerError):
    """The worker died under the call. `collateral`: another call's deadline had the
    worker killed, so this failure is not this call's doing (and is not recorded)."""

    def __init__(self, message: str, *, collateral: bool = False) -> None:
        super().__init__(message)
        self.collateral = collateral


class CallTimeout(WorkerError):
    """The call passed its deadline. `backpressured`: the server, not the plugin, was
    behind (its client read slowly), so it does not count as the plugin hanging."""

    def __init__(self, message: str, *, backpressured: bool = False) -> None:
        super().__init__(message)
        self.backpressured = backpressured


class LimitExceeded(WorkerError):
    """The plugin hit one of its worker's resource limits; the message says which."""


class InvalidStoredValves(WorkerError):
    """The function's stored valves no longer fit its Valves class; staff must edit them."""


class PluginFailed(WorkerError):
    """The plugin raised; carries its exception type and traceback."""

    def __init__(self, message: str, kind: str, trace: str) -> None:
        # str() is the plugin's own message: an inlet's text reaches the user as written.
        super().__init__(message or kind)
        self.kind, self.trace = kind, trace
