"""The worker executor: the runtime's executor seam, backed by workers.

The runtime hands it whole operations: a hook call (`invoke` for a value, `stream`
for a pipe's answer in batches of chunks, `filter_stream` for a filter's stream hook
over a whole answer: one call, batches in and out), a valves validation or option
listing (`valves`), and the save-time check of new code (`check`). Each call
becomes a message carrying the plugin's source hash (the source itself the first time
a worker sees it), its valves and user valves as plain data, and the call's context;
events and `__event_call__` questions come back through the context's own emitter
and caller.

Each function has workers of its own (or shares them with the functions staff put
in the same trust group): started at its first call, kept while used, stopped
after FUNCTIONS_WORKER_IDLE_SECONDS without calls. So a plugin's process never
holds another function's code, valves or calls, and a crash fails only its own.

The server runs `ProcessExecutor` (sandboxed worker processes). `InlineExecutor`,
for unit tests only, runs the same worker code in the test process.
"""

import asyncio
import contextlib
import contextvars
import functools
import importlib
import inspect
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from functions.seam import ItemFailed, PluginCall
from functions.selectors import code_saver
from functions.services import plugin_env
from functions.services.context import CallContext
from functions.services.host import loading, set_caller, set_load_scope
from functions.services.plugin_contract import Chunk
from functions.workers.connection import InputFailed
from functions.workers.pool import (
    CallTimeout,
    InvalidStoredValves,
    LimitExceeded,
    Limits,
    PluginFailed,
    WorkerConnection,
    WorkerCrashed,
    WorkerError,
    WorkerPool,
)

log = logging.getLogger(__name__)

# Context fields that travel (the request as its plain data); callables stay here.
CONTEXT_FIELDS = tuple(
    name
    for name in CallContext.__dataclass_fields__
    if name not in ("event_emitter", "event_call", "tools")
)
# How long a valves validation or option listing may take in a worker.
VALVES_TIMEOUT = 10.0


def context_payload(context: CallContext) -> dict[str, Any]:
    return {name: getattr(context, name) for name in CONTEXT_FIELDS}


async def serve_host(
    name: str,
    args: list,
    kwargs: dict,
    user: dict | Callable[[], dict | None] | None,
    function_id: str | None = None,
    request: dict | None = None,
    *,
    read_only: bool = False,
) -> Any:
    """Run a host-data method for a worker's call, scoped to that call's user, function
    and request (a `__request__` the plugin passes is replaced by this one); read-only,
    for its code's saver, while the plugin's module loads."""
    host = importlib.import_module("open_webui._host")

    def run() -> Any:
        set_caller(user, function_id, request, read_only=read_only)
        return host.run_hosted(name, args, kwargs)

    result = await sync_to_async(run, thread_sensitive=False)()
    if inspect.iscoroutine(result):
        # A fresh context: the host server task was born inside some earlier request,
        # whose asgiref executor state must not leak into this call.
        scope = contextvars.Context()
        scope.run(set_caller, user, function_id, request, read_only=read_only)
        result = await asyncio.create_task(result, context=scope)
    return host.encode(await host.collect_stream(result))


def serve_host_sync(name: str, args: list, kwargs: dict, user: Any, function_id: str | None) -> Any:
    """Run a host-data method for a save-time check, in this thread (read-only, for
    the staff member saving the code)."""
    host = importlib.import_module("open_webui._host")

    def run() -> Any:
        set_caller(user, function_id, read_only=True)
        result = host.run_hosted(name, args, kwargs)
        if inspect.iscoroutine(result):
            result = asyncio.run(_collected(host, result))
        return host.encode(result)

    return contextvars.Context().run(run)


async def _collected(host, coroutine) -> Any:
    return await host.collect_stream(await coroutine)


def failure_kind(exc: WorkerError) -> str:
    if isinstance(exc, CallTimeout):
        return "error" if exc.backpressured else "timeout"
    if isinstance(exc, WorkerCrashed):
        return "crash"
    if isinstance(exc, LimitExceeded):
        return "limit"
    return "error"


@contextlib.asynccontextmanager
async def recorded(function_id: str):
    """Record a failed call in the function's health (shown to staff; may quarantine it).
    Not recorded: stored valves that no longer fit (staff's to fix), and a crash that
    another call's deadline caused (that one is recorded, once, as the timeout)."""
    try:
        yield
    except InvalidStoredValves:
        raise
    except WorkerCrashed as exc:
        if not exc.collateral:
            await _record(function_id, exc)
        raise
    except WorkerError as exc:
        await _record(function_id, exc)
        raise


async def _record(function_id: str, exc: WorkerError) -> None:
    from functions.services.health import health_record_failure

    trace = exc.trace if isinstance(exc, PluginFailed) else ""
    message = f"{exc.kind}: {exc}" if isinstance(exc, PluginFailed) else str(exc)
    try:
        await sync_to_async(health_record_failure, thread_sensitive=False)(
            function_id=function_id, kind=failure_kind(exc), message=message, traceback=trace
        )
    except Exception:  # the call's own error is what the caller must see
        log.exception("Could not record the failure of %s", function_id)


def _chunks(message: dict, budget: "_Budget") -> list[Chunk]:
    budget.charge(message["size"])  # the bytes that crossed, not a re-encoding of them
    return [
        Chunk(text=item.get("t") or "", data=item.get("d"), done=item["done"])
        for item in message["items"]
    ]


def _outputs(message: dict) -> list[Any]:
    """A session's answer to one batch: each event's value, or ItemFailed."""
    values = message["items"]
    for index, kind, text in message["failed"]:
        values[index] = ItemFailed(kind, text)
    return values


async def _no_session(event: dict) -> dict:
    return {"error": "No interactive session."}


class _Budget:
    """What one call may send back: its answer and its events share a byte budget, and
    its events are counted, so a plugin cannot grow the server's memory through them."""

    def __init__(self, call: PluginCall, max_bytes: int, max_events: int) -> None:
        self.call, self.max_bytes, self.max_events = call, max_bytes, max_events
        self.bytes = self.events = 0

    def charge(self, size: int) -> None:
        self.bytes += size
        if self.max_bytes and self.bytes > self.max_bytes:
            raise LimitExceeded(
                f"Function {self.call.function_id} exceeded the response limit of "
                f"{self.max_bytes} bytes"
            )

    def charge_event(self, event: Any) -> None:
        self.events += 1
        if self.max_events and self.events > self.max_events:
            raise LimitExceeded(
                f"Function {self.call.function_id} exceeded the limit of "
                f"{self.max_events} events per call"
            )
        self.charge(len(json.dumps(event, default=str)))


class _LoopState:
    """The pools and concurrency caps of one event loop."""

    def __init__(self) -> None:
        self.pools: dict[tuple, WorkerPool] = {}
        self.caps: dict[str, asyncio.Semaphore] = {}
        self.reaper: asyncio.Task | None = None
        self.stopping: set[asyncio.Task] = set()


class WorkerExecutor:
    """Pools of workers, one per function (or trust group) and event loop."""

    def __init__(
        self,
        *,
        source_dir: str,
        limits: Limits,
        timeout: float,
        first_chunk_timeout: float,
        size: int = 1,
        max_concurrency: int = 8,
        max_calls: int = 1000,
        idle_seconds: float = 300.0,
        max_response_bytes: int = 0,
        max_pools: int = 0,
        max_events: int = 0,
    ) -> None:
        self.size, self.source_dir, self.limits = size, source_dir, limits
        self.timeout, self.first_chunk_timeout = timeout, first_chunk_timeout
        self.max_concurrency, self.max_calls = max_concurrency, max_calls
        self.idle_seconds, self.max_response_bytes = idle_seconds, max_response_bytes
        self.max_pools = max_pools  # functions with live workers at once; 0: no cap
        self.max_events = max_events  # events (and questions) per call; 0: no cap
        self._loops: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @classmethod
    def from_settings(cls):
        return cls(
            size=settings.FUNCTIONS_WORKERS_PER_FUNCTION,
            source_dir=str(settings.FUNCTIONS_SOURCE_DIR),
            limits=Limits.from_settings(),
            max_calls=settings.FUNCTIONS_WORKER_MAX_CALLS,
            timeout=settings.FUNCTIONS_CALL_TIMEOUT,
            first_chunk_timeout=settings.FUNCTIONS_FIRST_CHUNK_TIMEOUT,
            max_concurrency=settings.FUNCTIONS_MAX_CONCURRENCY,
            idle_seconds=settings.FUNCTIONS_WORKER_IDLE_SECONDS,
            max_response_bytes=settings.FUNCTIONS_MAX_RESPONSE_BYTES,
            max_pools=settings.FUNCTIONS_MAX_WORKER_POOLS,
            max_events=settings.FUNCTIONS_MAX_EVENTS,
        )

    # Pools

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState()
        return state

    def cap(self, function_id: str) -> asyncio.Semaphore:
        """The per-function concurrency cap: excess calls queue instead of starving others."""
        caps = self._state().caps
        if function_id not in caps:
            caps[function_id] = asyncio.Semaphore(self.max_concurrency)
        return caps[function_id]

    def pool_for(self, call: PluginCall) -> WorkerPool:
        """The workers of this call's function (or trust group) and environment."""
        state = self._state()
        key = (call.group, call.environment)
        pool = state.pools.get(key)
        if pool is None:
            self._make_room(state)
            pool = state.pools[key] = self._new_pool(call)
        if state.reaper is None or state.reaper.done():
            state.reaper = asyncio.get_running_loop().create_task(self._reap(state))
        return pool

    def _new_pool(self, call: PluginCall) -> WorkerPool:
        raise NotImplementedError

    def _make_room(self, state: _LoopState) -> None:
        """At the cap, stop the workers of the function idle the longest (if any is idle:
        busy ones are never stopped for another's sake)."""
        if not self.max_pools or len(state.pools) < self.max_pools:
            return
        idle = sorted((p.last_used, k) for k, p in state.pools.items() if not p.busy)
        if idle:
            pool = state.pools.pop(idle[0][1])
            task = asyncio.get_running_loop().create_task(pool.stop())
            state.stopping.add(task)
            task.add_done_callback(state.stopping.discard)

    async def warm(self, calls: list[PluginCall]) -> None:
        """Start the workers these calls will need, all at once; a failure to start is
        left for the call itself to report."""
        pools = {id(p): p for p in (self.pool_for(call) for call in calls) if not p.workers}
        if pools:
            await asyncio.gather(*(p.start() for p in pools.values()), return_exceptions=True)

    def pools(self) -> dict[tuple, WorkerPool]:
        """This event loop's pools (tests, health)."""
        return dict(self._state().pools)

    async def _reap(self, state: _LoopState) -> None:
        """Stop the workers of functions that have not been called for a while."""
        while state.pools:
            await asyncio.sleep(max(0.05, min(self.idle_seconds / 4, 30.0)))
            await self.reap_idle(state)

    async def reap_idle(self, state: _LoopState | None = None) -> int:
        state = state or self._state()
        cutoff = time.monotonic() - self.idle_seconds
        # Taken out of the state first, with no await in between: a call that comes
        # while they stop gets a fresh pool instead of a stopping one.
        idle = [k for k, p in state.pools.items() if not p.busy and p.last_used < cutoff]
        stopping = [state.pools.pop(key) for key in idle]
        for pool in stopping:
            await pool.stop()
        return len(stopping)

    async def stop(self) -> None:
        """Stop this event loop's workers (tests, shutdown)."""
        state = self._loops.pop(asyncio.get_running_loop(), None)
        if state is None:
            return
        if state.reaper is not None:
            state.reaper.cancel()
        for pool in state.pools.values():
            await pool.stop()

    # Calls

    def _request(self, call: PluginCall, op: str, **fields: Any) -> dict[str, Any]:
        if not call.source:
            raise ValueError(f"{call.function_id}: a worker needs the plugin's source")
        return {
            "op": op,
            "function_id": call.function_id,
            "source": call.source,
            "sha256": call.sha256,
            **fields,
        }

    def _hook_request(self, call, hook, data, context, *, data_name, id, stream):
        return self._request(
            call,
            "call",
            hook=hook,
            hook_id=id or call.function_id,
            data=data,
            data_name=data_name,
            stream=stream,
            valves=call.valves,
            user_valves=call.user_valves,
            context=context_payload(context),
        )

    def _budget(self, call: PluginCall) -> _Budget:
        return _Budget(call, self.max_response_bytes, self.max_events)

    def _callbacks(self, call: PluginCall, context: CallContext, budget: _Budget | None = None):
        async def on_event(event: dict) -> None:
            if budget is not None:
                budget.charge_event(event)
            if context.event_emitter is not None:
                await context.event_emitter(event)

        def on_event_call(event: dict) -> Awaitable[Any]:
            if budget is not None:
                budget.charge_event(event)  # raises at once, before the question is asked
            return (context.event_call or _no_session)(event)

        async def on_host(name: str, args: list, kwargs: dict) -> Any:
            return await serve_host(
                name, args, kwargs, context.user, call.function_id, context.request
            )

        # Found once, and only if the module asks for host data while it loads.
        saver = functools.cache(lambda: code_saver(call.function_id, call.sha256))

        async def on_load_host(name: str, args: list, kwargs: dict) -> Any:
            return await serve_host(name, args, kwargs, saver, call.function_id, read_only=True)

        return {
            "on_event": on_event,
            "on_event_call": on_event_call,
            "on_host": on_host,
            "on_load_host": on_load_host,
        }

    async def invoke(
        self,
        call: PluginCall,
        hook: str,
        data: Any,
        context: CallContext,
        *,
        data_name: str | None = "body",
        id: str | None = None,
    ) -> Any:
        """Run one hook in a worker and return its value."""
        request = self._hook_request(
            call, hook, data, context, data_name=data_name, id=id, stream=False
        )
        value = None
        callbacks = self._callbacks(call, context, self._budget(call))
        async with self.cap(call.function_id), recorded(call.function_id):
            async for message in self.pool_for(call).call(
                request, timeout=call.timeout or self.timeout, **callbacks
            ):
                if message["op"] == "result":
                    value = message["value"]
        return value

    async def stream(
        self, call: PluginCall, hook: str, data: Any, context: CallContext, *, id: str | None = None
    ) -> AsyncIterator[list[Chunk]]:
        """Run a pipe in a worker and yield its answer in batches of chunks, one per
        frame that crossed (the first at once, what piled up behind it together); stop it
        at FUNCTIONS_MAX_RESPONSE_BYTES."""
        request = self._hook_request(
            call, hook, data, context, data_name="body", id=id, stream=True
        )
        budget = self._budget(call)
        async with self.cap(call.function_id), recorded(call.function_id):
            messages = self.pool_for(call).call(
                request,
                timeout=call.timeout or self.timeout,
                first_timeout=self.first_chunk_timeout,
                **self._callbacks(call, context, budget),
            )
            async with contextlib.aclosing(messages):  # a refusal here stops the plugin now
                async for message in messages:
                    batch = _chunks(message, budget)
                    if batch:
                        yield batch
                    # A batch that was already waiting is taken without suspending: let
                    # the loop serve other requests between batches, however fast a
                    # plugin yields.
                    await asyncio.sleep(0)

    async def filter_stream(
        self, call: PluginCall, batches: AsyncIterator[list[dict]], context: CallContext
    ) -> AsyncIterator[list[Any]]:
        """Run a filter's `stream` hook over one answer as ONE worker call (a session):
        for each input batch of chunk dicts, yield one list of the same length, in order,
        each item the hook's wire value for that event or ItemFailed when it raised there
        (the session goes on). Batches are sent ahead of their answers (pipelining), a
        few at most (backpressure); each must be answered within the call's timeout
        (waiting for input does not count). A crash, timeout or limit ends the session
        with its seam error; an error `batches` raises is raised as it is. Closing this
        iterator ends the session in the worker. The session closes `batches`."""
        request = self._hook_request(
            call, "stream", None, context, data_name="event", id=None, stream=False
        )
        request["session"] = True
        budget = self._budget(call)
        try:
            async with recorded(call.function_id):
                answers = self.pool_for(call).session(
                    request,
                    batches,
                    timeout=call.timeout or self.timeout,
                    slot=self.cap(call.function_id),
                    **self._callbacks(call, context, budget),
                )
                async with contextlib.aclosing(answers):
                    async for message in answers:
                        budget.charge(message["size"])
                        yield _outputs(message)
        except InputFailed as exc:  # its input's failure, not this function's
            raise exc.error from None

    async def valves(
        self,
        call: PluginCall,
        which: str,
        *,
        values: dict | None = None,
        spec: dict | None = None,
        user: dict | None = None,
    ) -> dict[str, Any]:
        """Validate values with the plugin's Valves/UserValves ({"data"} or {"errors"}),
        and/or resolve the spec's dynamic options ({"options"}), in its worker."""
        request = self._request(call, "valves", which=which, values=values, spec=spec, user=user)
        answer: dict[str, Any] = {}
        context = CallContext(user=user or {})
        async with self.cap(call.function_id), recorded(call.function_id):
            async for message in self.pool_for(call).call(
                request, timeout=VALVES_TIMEOUT, **self._callbacks(call, context)
            ):
                if message["op"] == "result":
                    answer = message["value"] or {}
        return answer

    def check(
        self, source: str, *, function_id: str, environment: str | None, saver: Any = None
    ) -> dict:
        """Load new code where plugin code runs and return its LoadReport dict. Host
        data its module asks for is read-only, for `saver` (a __user__ dict, or a
        function that finds it)."""
        raise NotImplementedError


class ProcessExecutor(WorkerExecutor):
    """The server's executor: sandboxed worker processes, and a throwaway sandboxed
    process for each save-time check."""

    def _new_pool(self, call: PluginCall) -> WorkerPool:
        return WorkerPool(
            self.size,
            self.source_dir,
            limits=self.limits,
            max_calls=self.max_calls,
            python=plugin_env.worker_python(call.environment),
            name=call.group,
        )

    def check(
        self, source: str, *, function_id: str, environment: str | None, saver: Any = None
    ) -> dict:
        from functions.workers.check import check_in_worker

        return check_in_worker(
            source,
            function_id=function_id,
            source_dir=self.source_dir,
            timeout=settings.FUNCTIONS_CHECK_TIMEOUT,
            limits=self.limits,
            python=plugin_env.worker_python(environment),
            serve_host=functools.partial(serve_host_sync, user=saver, function_id=function_id),
        )


class InlineExecutor(ProcessExecutor):
    """Unit tests only: the worker's own code in this process (functions.workers.inline).
    Code with a requirement environment needs that environment's interpreter, so its
    checks and calls go to sandboxed processes, as on the server."""

    def _new_pool(self, call: PluginCall) -> WorkerPool:
        from functions.workers.inline import InlineWorker

        if call.environment:
            return super()._new_pool(call)

        async def start() -> WorkerConnection:
            return InlineWorker(self.source_dir, self.limits)

        return WorkerPool(1, self.source_dir, limits=self.limits, name=call.group, factory=start)

    def check(
        self, source: str, *, function_id: str, environment: str | None, saver: Any = None
    ) -> dict:
        from functions.services.loader import check_source

        if environment:
            return super().check(
                source, function_id=function_id, environment=environment, saver=saver
            )

        def run() -> dict:
            set_load_scope(saver, function_id)
            with loading():
                return check_source(source, function_id=function_id, source_dir=self.source_dir)

        return contextvars.copy_context().run(run).as_dict()
