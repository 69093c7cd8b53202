"""The plugin contract at run time: how hooks are called and what they may return.

Classes and hooks (the loader picks the class in this order):
- `Pipe.pipe(body, …)` answers a chat; a manifold also has `pipes` (a list, or a
  sync or async method returning [{"id", "name"}]).
- `Filter.inlet(body, …) -> body`, `Filter.stream(event, …) -> event | None`,
  `Filter.outlet(body, …) -> body`, each optional, run in (Valves.priority, id) order.
  An answer streams through the stream hooks in batches (`stream_through`): one call
  (a session) per filter for the whole answer, all filters at work at once.
- `Action.action(body, …)` runs when a message button is clicked.
Every hook may be sync or async. Hooks run in the function's own worker (the
executor seam, functions.services.executor), never in the server; sync hooks (and
sync generators, one item at a time) run in the worker's threads, never on its
event loop thread (module code and `__init__` run there, as in Open WebUI).

Arguments: the data argument by name (`body`, or `event` for stream; passed
positionally when the hook names it differently), plus the reserved names the
signature declares, or all of them when it takes **kwargs (functions.services.context).

Valves: the server sends each call its stored valves and the user's user valves as
data; the worker validates them with the plugin's own classes and runs the hook on
a shallow copy of its cached instance carrying those valves, so concurrent calls
with different valves never race on one shared object. Attributes a hook assigns
on `self` therefore last for that call only (for a stream hook, the call is the
whole answer); mutable objects created in `__init__` are shared, as upstream. A
worker validates the same stored values once and hands each call its own copy.
`__user__["valves"]` holds only this plugin's UserValves.

What a pipe may return, and the arguments a hook is called with, are the plugin
contract both sides of the executor share (functions.services.plugin_contract).

Plugins get their data as arguments and never use the ORM: callers prepare
PluginCall objects (plain data: the load report, valves as dicts) beforehand,
outside the event loop's hot path.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from functions.seam import ExecutorError, ItemFailed, PluginCall, PluginFailed
from functions.services.context import CallContext
from functions.services.executor import get_executor
from functions.services.plugin_contract import Chunk

log = logging.getLogger(__name__)
# Batches a stream stage takes in ahead of its session (backpressure), and the events
# it joins into one batch for it at most.
FEED_AHEAD = 8
MAX_BATCH = 512
_END = object()


class HookError(Exception):
    """A plugin hook raised; carries the function id and hook name."""

    def __init__(self, function_id: str, hook: str, error: BaseException) -> None:
        self.function_id, self.hook, self.error = function_id, hook, error
        # The events the request's plugins emitted before it failed ({"type", "data"}),
        # set by the door that has them, so a refusal loses none of them.
        self.events: list[dict[str, Any]] = []
        super().__init__(f"{function_id}.{hook}: {error}")

    def keep_events(self, recorder: Any) -> None:
        """Carry what the request's plugins emitted so far (its EventRecorder's events)."""
        self.events = [event.as_dict() for event in recorder.events]

    @property
    def message(self) -> str:
        return str(self.error) or type(self.error).__name__

    @property
    def described(self) -> str:
        """The message for a user, naming the function once ("Function x failed: ...")."""
        if self.message.startswith(f"Function {self.function_id} "):
            return self.message  # the executor's own messages name it already
        return f"Function {self.function_id} failed: {self.message}"


class FilterAbort(HookError):
    """An inlet filter refused the request; its message is for the user."""


def order_filters(filters: list[PluginCall]) -> list[PluginCall]:
    """Sort filters by (Valves.priority, id), as Open WebUI does for every hook."""
    return sorted(filters, key=lambda f: (f.priority, f.function_id))


async def call_hook(
    call: PluginCall,
    hook: str,
    data: Any,
    context: CallContext,
    *,
    data_name: str = "body",
    id: str | None = None,
    executor: Any = None,
) -> Any:
    """Call one hook of a plugin in its worker, with its data and reserved arguments.
    `executor` defaults to the configured one (tests pass their own)."""
    executor = executor or get_executor()
    return await executor.invoke(call, hook, data, context, data_name=data_name, id=id)


async def run_pipe(
    call: PluginCall, body: dict, context: CallContext, *, executor: Any = None
) -> AsyncIterator[list[Chunk]]:
    """Call a pipe in its worker and yield its answer in batches of chunks, as they
    crossed (the first at once; what piled up behind it together); raise HookError
    naming the function."""
    executor = executor or get_executor()
    try:
        async for batch in executor.stream(call, "pipe", body, context):
            yield batch
    except HookError:
        raise
    except Exception as exc:
        log.warning("Pipe %s failed: %s", call.function_id, exc)
        raise HookError(call.function_id, "pipe", exc) from exc


# Filters


async def fold_filters(
    filters: list[PluginCall],
    hook: str,
    body: dict,
    context: CallContext,
    *,
    abort: bool = False,
    **options: Any,
) -> dict:
    """Fold one body hook (`inlet` or `outlet`) over the filters in (priority, id) order:
    each gets what the one before returned (a non-dict return leaves the body as it
    was). A failing hook raises FilterAbort when `abort` (an inlet refuses the
    request), else it is reported to the user and the fold goes on without it."""
    for call in order_filters(filters):
        if not call.must_call(hook, body):
            continue
        try:
            result = await call_hook(call, hook, body, context, **options)
        except Exception as exc:
            if abort:
                raise FilterAbort(call.function_id, hook, exc) from exc
            await _report(call, hook, exc, context)
            continue
        body = result if isinstance(result, dict) else body
    return body


async def apply_inlet(
    filters: list[PluginCall], body: dict, context: CallContext, **options: Any
) -> dict:
    """The inlet chain; a raising inlet aborts with FilterAbort."""
    return await fold_filters(filters, "inlet", body, context, abort=True, **options)


async def apply_outlet(
    filters: list[PluginCall], body: dict, context: CallContext, **options: Any
) -> dict:
    """The outlet chain on the finished message; failures are reported, not swallowed."""
    return await fold_filters(filters, "outlet", body, context, **options)


async def _report(call: PluginCall, hook: str, exc: Exception, context: CallContext) -> None:
    log.error("Filter %s failed in %s: %s", call.function_id, hook, exc, exc_info=exc)
    if context.event_emitter is not None:
        message = f"Filter {call.name} failed in {hook}: {exc}"
        await context.event_emitter(
            {"type": "notification", "data": {"type": "warning", "content": message}}
        )


async def stream_through(
    filters: list[PluginCall],
    batches: AsyncIterator[list[dict]],
    context: CallContext,
    *,
    executor: Any = None,
) -> AsyncIterator[list[dict]]:
    """Pass an answer's chunk dicts, in batches, through the filters' stream hooks: one
    session per filter with a stream hook, in order_filters order, all of them at once
    (filter 2 works on a batch while filter 1 works on the next). A falsy result drops
    its event; an event whose hook raised is reported and passed on unchanged; a
    session that fails (crash, timeout, limit) is reported once and the rest of the
    answer passes that filter unchanged. Yields the non-empty batches that come out;
    an error of `batches` itself (the pipe's) is raised as it is, after what came
    before it. A caller that stops early closes it (contextlib.aclosing): that ends
    the sessions where they run, and `batches` with them."""
    executor = executor or get_executor()
    stream = batches
    for call in order_filters(filters):
        if not call.has_hook("stream"):
            continue
        if "stream" in call.report.noop_hooks:
            stream = _noop_stage(stream)
        else:
            stream = _stream_stage(executor, call, stream, context)
    try:
        async for batch in stream:
            if batch:
                yield batch
    finally:
        await _aclose(stream)


async def _noop_stage(upstream: AsyncIterator[list[dict]]) -> AsyncIterator[list[dict]]:
    """A stream hook the load report proves returns its event: done here, as its worker
    would (PluginCall.must_call): a falsy event is dropped."""
    try:
        async for batch in upstream:
            yield [event for event in batch if event]
    finally:
        await _aclose(upstream)


async def _stream_stage(
    executor: Any, call: PluginCall, upstream: AsyncIterator[list[dict]], context: CallContext
) -> AsyncIterator[list[dict]]:
    """One filter's session over the stream."""
    feed = _Feed(upstream)
    try:
        try:
            answers = executor.filter_stream(call, feed.batches(), context)
            async with contextlib.aclosing(answers):
                async for results in answers:
                    yield await _merged(call, feed.sent.popleft(), results, context)
        except Exception as exc:
            if exc is feed.error or not isinstance(exc, ExecutorError):
                raise  # the pipe's (or the caller's) failure, not this filter's
            await _report(call, "stream", exc, context)
            while feed.sent:  # sent to the session, never answered
                yield feed.sent.popleft()
            async for batch in feed.rest():
                yield batch
    finally:
        await feed.close()


async def _merged(
    call: PluginCall, events: list[dict], results: list[Any], context: CallContext
) -> list[dict]:
    """A filtered batch: each event's result, or the event itself where the hook failed;
    falsy results dropped."""
    merged = []
    for event, result in zip(events, results, strict=True):
        if isinstance(result, ItemFailed):
            await _report(call, "stream", PluginFailed(result.message, result.kind, ""), context)
            result = event
        if result:
            merged.append(result)
    return merged


class _Feed:
    """A stage's input, pumped by a task of its own into a bounded queue: its session
    takes what piled up there as one batch (so batches grow when a stage is behind),
    and after a failed session the rest of the answer is still there to pass on."""

    def __init__(self, upstream: AsyncIterator[list[dict]]) -> None:
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=FEED_AHEAD)
        self.sent: deque[list[dict]] = deque()  # given to the session, not yet answered
        self.error: Exception | None = None
        self.finished = False
        self._pump = asyncio.create_task(self._run(upstream))

    async def _run(self, upstream: AsyncIterator[list[dict]]) -> None:
        try:
            try:
                async for batch in upstream:
                    if batch:
                        await self.queue.put(batch)
            except Exception as exc:
                self.error = exc
            finally:
                await _aclose(upstream)
        except Exception as exc:  # closing it failed: that ends the answer too
            self.error = self.error or exc
        finally:
            await self.queue.put(_END)  # always: its reader must never wait for ever

    async def batches(self) -> AsyncIterator[list[dict]]:
        while not self.finished:
            batch = await self.queue.get()
            if batch is _END:
                break
            batch = list(batch)
            while len(batch) < MAX_BATCH and not self.queue.empty():
                more = self.queue.get_nowait()
                if more is _END:
                    self.finished = True
                    break
                batch.extend(more)
            self.sent.append(batch)
            yield batch
        self.finished = True
        if self.error is not None:
            raise self.error

    async def rest(self) -> AsyncIterator[list[dict]]:
        while not self.finished:
            batch = await self.queue.get()
            if batch is _END:
                break
            yield batch
        self.finished = True
        if self.error is not None:
            raise self.error

    async def close(self) -> None:
        self._pump.cancel()
        with contextlib.suppress(BaseException):
            await self._pump


async def _aclose(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


async def apply_stream(
    filters: list[PluginCall], event: dict, context: CallContext, **options: Any
) -> dict | None:
    """Pass one chunk through stream hooks, one call per hook; a falsy return drops it,
    a failure is reported. (An answer's stream goes through stream_through: this is for
    a single event.)"""
    for call in order_filters(filters):
        if not call.must_call("stream", event):
            continue
        try:
            result = await call_hook(call, "stream", event, context, data_name="event", **options)
        except Exception as exc:
            await _report(call, "stream", exc, context)
            continue
        if not result:
            return None
        event = result
    return event


async def run_action(
    call: PluginCall,
    body: dict,
    context: CallContext,
    *,
    sub_id: str | None = None,
    executor: Any = None,
) -> Any:
    """Call an action (or one of its sub-actions, as __id__); raise HookError on failure."""
    try:
        return await call_hook(
            call, "action", body, context, id=sub_id or call.function_id, executor=executor
        )
    except Exception as exc:
        log.warning("Action %s failed: %s", call.function_id, exc)
        raise HookError(call.function_id, "action", exc) from exc
