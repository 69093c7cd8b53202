"""The process executor: the runtime's executor seam, backed by worker processes.

The runtime hands it whole hook calls (`invoke` for a value, `stream` for a
pipe's answer). Each becomes a message carrying the plugin's source hash (the
source itself the first time a worker sees it), its valves and user valves as
plain data, and the call's context; events and `__event_call__` questions come
back through the context's own emitter and caller.
"""

import asyncio
import contextlib
import contextvars
import importlib
import inspect
import logging
import sys
import weakref
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from pydantic import BaseModel, SecretBytes, SecretStr

from functions.services.context import CallContext
from functions.services.environments import env_python
from functions.services.host import set_caller
from functions.services.runtime import Chunk, PluginCall
from functions.workers.pool import (
    CallTimeout,
    LimitExceeded,
    Limits,
    PluginFailed,
    WorkerCrashed,
    WorkerError,
    WorkerPool,
)

log = logging.getLogger(__name__)

# Context fields that travel; the request object and callables stay on the server.
CONTEXT_FIELDS = (
    "user",
    "metadata",
    "model",
    "messages",
    "chat_id",
    "session_id",
    "message_id",
    "files",
    "task",
    "task_body",
    "oauth_token",
)


def valves_payload(valves: BaseModel | None) -> dict[str, Any] | None:
    """Valves as data the worker can validate again, secrets revealed (only to it)."""
    if valves is None:
        return None
    data = valves.model_dump(mode="json")
    for name in type(valves).model_fields:
        value = getattr(valves, name, None)
        if isinstance(value, SecretStr | SecretBytes):
            secret = value.get_secret_value()
            data[name] = secret.decode() if isinstance(secret, bytes) else secret
    return data


def context_payload(context: CallContext) -> dict[str, Any]:
    return {name: getattr(context, name) for name in CONTEXT_FIELDS}


async def serve_host(name: str, args: list, kwargs: dict, user: dict) -> Any:
    """Run a host-data method for a worker's call, scoped to that call's user."""
    host = importlib.import_module("open_webui._host")

    def run() -> Any:
        set_caller(user)
        return host.run_hosted(name, args, kwargs)

    result = await sync_to_async(run, thread_sensitive=False)()
    if inspect.iscoroutine(result):
        # A fresh context: the host server task was born inside some earlier request,
        # whose asgiref executor state must not leak into this call.
        scope = contextvars.Context()
        scope.run(set_caller, user)
        result = await asyncio.create_task(result, context=scope)
    return host.encode(await host.collect_stream(result))


def failure_kind(exc: WorkerError) -> str:
    if isinstance(exc, CallTimeout):
        return "timeout"
    if isinstance(exc, WorkerCrashed):
        return "crash"
    if isinstance(exc, LimitExceeded):
        return "limit"
    return "error"


@contextlib.asynccontextmanager
async def recorded(function_id: str):
    """Record a failed call in the function's health (shown to staff; may quarantine it)."""
    from functions.services.health import health_record_failure

    try:
        yield
    except WorkerError as exc:
        trace = exc.trace if isinstance(exc, PluginFailed) else ""
        message = f"{exc.kind}: {exc}" if isinstance(exc, PluginFailed) else str(exc)
        try:
            await sync_to_async(health_record_failure, thread_sensitive=False)(
                function_id=function_id, kind=failure_kind(exc), message=message, traceback=trace
            )
        except Exception:  # the call's own error is what the caller must see
            log.exception("Could not record the failure of %s", function_id)
        raise


async def _no_session(event: dict) -> dict:
    return {"error": "No interactive session."}


class ProcessExecutor:
    """Run hooks in a pool of supervised worker processes (one pool per event loop)."""

    remote = True

    def __init__(
        self,
        *,
        size: int,
        source_dir: str,
        limits: Limits,
        timeout: float,
        first_chunk_timeout: float,
        max_concurrency: int = 8,
        max_calls: int = 1000,
    ) -> None:
        self.max_calls = max_calls
        self.size, self.source_dir, self.limits = size, source_dir, limits
        self.timeout, self.first_chunk_timeout = timeout, first_chunk_timeout
        self.max_concurrency = max_concurrency
        self._pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._caps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @classmethod
    def from_settings(cls) -> "ProcessExecutor":
        return cls(
            size=settings.FUNCTIONS_WORKERS,
            source_dir=str(settings.FUNCTIONS_SOURCE_DIR),
            limits=Limits.from_settings(),
            max_calls=settings.FUNCTIONS_WORKER_MAX_CALLS,
            timeout=settings.FUNCTIONS_CALL_TIMEOUT,
            first_chunk_timeout=settings.FUNCTIONS_FIRST_CHUNK_TIMEOUT,
            max_concurrency=settings.FUNCTIONS_MAX_CONCURRENCY,
        )

    def cap(self, function_id: str) -> asyncio.Semaphore:
        """The per-function concurrency cap: excess calls queue instead of starving others."""
        caps = self._caps.setdefault(asyncio.get_running_loop(), {})
        if function_id not in caps:
            caps[function_id] = asyncio.Semaphore(self.max_concurrency)
        return caps[function_id]

    def pool(self, environment: str | None = None) -> WorkerPool:
        """The workers of this event loop for one requirement environment (None: the
        server's own packages). Each environment's workers run its interpreter."""
        pools = self._pools.setdefault(asyncio.get_running_loop(), {})
        if environment not in pools:
            size, python = self.size, sys.executable
            if environment is not None:
                size = settings.FUNCTIONS_ENV_WORKERS
                python = env_python(environment)
            pools[environment] = WorkerPool(
                size, self.source_dir, limits=self.limits, max_calls=self.max_calls, python=python
            )
        return pools[environment]

    async def stop(self) -> None:
        """Stop this event loop's workers (tests, shutdown)."""
        for pool in self._pools.pop(asyncio.get_running_loop(), {}).values():
            await pool.stop()

    def _request(
        self,
        call: PluginCall,
        hook: str,
        data: Any,
        context: CallContext,
        *,
        data_name: str | None,
        id: str | None,
        stream: bool,
    ) -> dict[str, Any]:
        if not call.source:
            raise ValueError(f"{call.function_id}: a worker needs the plugin's source")
        return {
            "op": "call",
            "function_id": call.function_id,
            "source": call.source,
            "sha256": call.sha256,
            "hook": hook,
            "hook_id": id or call.function_id,
            "data": data,
            "data_name": data_name,
            "stream": stream,
            "valves": valves_payload(call.valves),
            "user_valves": valves_payload(call.user_valves),
            "context": context_payload(context),
        }

    def _callbacks(self, context: CallContext) -> dict[str, Any]:
        async def on_event(event: dict) -> None:
            if context.event_emitter is not None:
                await context.event_emitter(event)

        async def on_host(name: str, args: list, kwargs: dict) -> Any:
            return await serve_host(name, args, kwargs, context.user)

        return {
            "on_event": on_event,
            "on_event_call": context.event_call or _no_session,
            "on_host": on_host,
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
        request = self._request(call, hook, data, context, data_name=data_name, id=id, stream=False)
        value = None
        async with self.cap(call.function_id), recorded(call.function_id):
            async for message in self.pool(call.environment).call(
                request, timeout=call.timeout or self.timeout, **self._callbacks(context)
            ):
                if message["op"] == "result":
                    value = message["value"]
        return value

    async def stream(
        self, call: PluginCall, hook: str, data: Any, context: CallContext, *, id: str | None = None
    ) -> AsyncIterator[Chunk]:
        """Run a pipe in a worker and yield its answer as chunks, as they are batched over."""
        request = self._request(call, hook, data, context, data_name="body", id=id, stream=True)
        async with self.cap(call.function_id), recorded(call.function_id):
            messages = self.pool(call.environment).call(
                request,
                timeout=call.timeout or self.timeout,
                first_timeout=self.first_chunk_timeout,
                **self._callbacks(context),
            )
            async for message in messages:
                for item in message.get("items") or []:
                    text, data = item.get("t") or "", item.get("d")
                    yield Chunk(text=text, data=data, done=bool(item["done"]))

    async def run(self, func, /, *args, **kwargs):
        raise TypeError("the process executor runs whole hooks, not server-side callables")

    def iterate(self, iterator):
        raise TypeError("the process executor runs whole hooks, not server-side iterators")


class StartWorkers:
    """ASGI wrapper: start the worker processes with the server, so the first plugin call
    does not wait for them. Daphne sends no lifespan events, so this happens when the
    first connection (a health check, say) arrives, on the loop that serves requests."""

    def __init__(self, app) -> None:
        self.app, self.started = app, False

    async def __call__(self, scope, receive, send):
        if not self.started:
            self.started = True
            task = asyncio.get_running_loop().create_task(_warm())
            _background.add(task)
            task.add_done_callback(_background.discard)
        return await self.app(scope, receive, send)


_background: set[asyncio.Task] = set()


async def _warm() -> None:
    from functions.services.executor import get_executor

    executor = get_executor()
    if isinstance(executor, ProcessExecutor):
        try:
            await executor.pool().start()
        except Exception:  # the first call will try again, and report why
            log.exception("Could not start the worker processes")
