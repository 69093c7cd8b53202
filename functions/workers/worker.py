"""A worker process: loads one function's plugin code and runs its hooks for the server.

Started (under the sandbox) as `python -m functions.workers.worker FD SOURCE_DIR HOST_FD`:
calls arrive and answers go back over the socket on FD; host data the plugin asks
for (the compat shims) goes to the server over the socket on HOST_FD; plugin sources
are written in SOURCE_DIR, the worker's own scratch dir. Its environment holds none
of the server's secrets, and it never opens the database: everything a hook needs
arrives in the call message.

Module code, `__init__` and Valves validation run on the worker's event loop thread
(as in Open WebUI); sync hooks and sync generators run in threads, so the worker
keeps answering event replies and cancellations while a plugin blocks. A stream-hook
session runs a sync hook over each input batch in one thread step, an async one on
the loop, and answers each batch in one frame.

What a call repeats is kept, per code version: each hook's signature, and validated
valves per stored values (each call still gets its own copy; functions.services.runtime
has the valves contract).
"""

import asyncio
import collections
import contextlib
import contextvars
import copy
import functools
import inspect
import logging
import os
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import msgpack
from pydantic import BaseModel, SecretBytes, SecretStr

from functions.services.context import CallContext, kwargs_for
from functions.services.loader import LoadedFunction, SourceError, load_source
from functions.services.plugin_contract import (
    Chunk,
    hook_arguments,
    html_of,
    plain_chunks,
    response_value,
    stream_pipe,
)
from functions.services.request import calling as calling_request
from functions.services.request import plugin_request
from functions.services.signatures import accepted_names
from functions.workers.protocol import (
    KEPT_REQUESTS,
    FrameTooLarge,
    Writer,
    read_message,
    remember_request,
)
from valves.spec import build_valves, resolve_options, validate_valves

log = logging.getLogger(__name__)
# Stream items a call may have produced ahead of the server (backpressure).
STREAM_AHEAD = 256
# How long a cancelled session waits for its thread to finish the event it is on:
# under the server's grace for a cancelled call (functions.workers.limits).
STOP_GRACE_SECONDS = 0.5
# The sync steps (threads) of the call this task serves, still running; a call that is
# cancelled with one of them running leaves a thread spinning, so the worker must go.
running_steps: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "fnplatform_running_steps", default=None
)


# Validated Valves/UserValves a worker keeps, per code version and stored values.
VALVES_CACHE_SIZE = 256
# Field values a call may share with another call's copy of the same valves.
_IMMUTABLE = (str, int, float, bool, bytes, type(None), SecretStr, SecretBytes)


class InvalidValves(Exception):
    """The stored global valves do not fit the plugin's Valves class any more."""


# Set at import, in the worker itself. A plugin that forks and lets the child run
# on (instead of exec-ing or exiting) must not have that child answer the server
# on the worker's socket: such a child leaves as soon as it gets back to us.
WORKER_PID = os.getpid()


def leave_if_forked(failed: bool = False) -> None:
    if os.getpid() != WORKER_PID:
        os._exit(1 if failed else 0)


def _guarded(func, /, *args, **kwargs):
    counter = running_steps.get()
    try:
        result = func(*args, **kwargs)
    except BaseException:
        leave_if_forked(failed=True)
        raise
    finally:
        if counter is not None:
            counter[0] -= 1
    leave_if_forked()
    return result


def _step_started() -> None:
    counter = running_steps.get()
    if counter is not None:
        counter[0] += 1


class _ThreadSteps:
    """The executor interface stream_pipe expects, on this worker's threads."""

    async def run(self, func, /, *args, **kwargs):
        context = contextvars.copy_context()
        _step_started()
        return await asyncio.to_thread(context.run, _guarded, func, *args, **kwargs)

    async def iterate(self, iterator):
        """Drain a sync iterator from one producer thread, so fast items pile up and batch.

        The producer wakes the loop only when the consumer is waiting for an item:
        items made while it is busy wait in a deque, taken without a wake-up each."""
        loop = asyncio.get_running_loop()
        handoff = _Handoff(loop)
        room = threading.Semaphore(1024)  # backpressure: at most this many items ahead
        stop = threading.Event()
        done = object()

        counter = running_steps.get()

        def produce() -> None:
            error = None
            try:
                for item in iterator:
                    room.acquire()
                    if stop.is_set():
                        return
                    handoff.put((item, None))
            except BaseException as exc:  # re-raised in the consumer
                error = exc
            finally:
                if counter is not None:
                    counter[0] -= 1
            leave_if_forked(failed=error is not None)
            handoff.put((done, error))

        thread = threading.Thread(
            target=contextvars.copy_context().run, args=(produce,), daemon=True
        )
        _step_started()
        thread.start()
        try:
            while True:
                item, error = await handoff.get()
                if error is not None:
                    raise error
                if item is done:
                    return
                room.release()
                yield item
        finally:
            stop.set()
            room.release()


class _Handoff:
    """Items from one thread to the loop's consumer: a deque under a lock, and a
    wake-up only for a consumer that found it empty and waits."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: collections.deque = collections.deque()
        self.lock = threading.Lock()
        self.waiter: asyncio.Future | None = None

    def put(self, entry: Any) -> None:
        with self.lock:
            self.items.append(entry)
            waiter, self.waiter = self.waiter, None
        if waiter is not None:
            self.loop.call_soon_threadsafe(_wake, waiter)

    async def get(self) -> Any:
        while True:
            with self.lock:
                if self.items:
                    return self.items.popleft()
                waiter = self.waiter = self.loop.create_future()
            await waiter


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():  # its consumer may have been cancelled meanwhile
        waiter.set_result(None)


class Worker:
    def __init__(self, writer: Writer, source_dir: str) -> None:
        self.out = writer
        self.source_dir = source_dir
        self.plugins: dict[str, LoadedFunction] = {}
        self.sources: dict[str, str] = {}
        self.loading: dict[str, threading.Lock] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.replies: dict[str, asyncio.Future] = {}
        self.requests: dict[str, dict] = {}  # `__request__` data by ref
        self.sessions: dict[str, asyncio.Queue] = {}  # a session's input batches, by call
        self.steps = _ThreadSteps()
        self.valves_cache = ValvesCache()
        # The accepted names of each hook (its signature, read once per code version).
        self.signatures: dict[tuple[str, str], tuple[Any, tuple[frozenset[str], bool]]] = {}

    def dispatch(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if "source" in message and "sha256" in message:
            # Kept at once: the next call names only the hash, and may arrive while
            # this one is still loading the code in a thread.
            self.sources.setdefault(message["sha256"], message["source"])
        request = (message.get("context") or {}).get("request")
        if request and len(request) > 1:  # in full: kept for the calls that name its ref
            remember_request(self.requests, request["ref"], request, size=KEPT_REQUESTS)
        if op in ("call", "valves"):
            call_id = message["id"]
            if message.get("session"):  # before its first batch can arrive
                self.sessions[call_id] = asyncio.Queue()
            task = asyncio.create_task(self.handle_call(message))
            self.tasks[call_id] = task
            task.add_done_callback(lambda _: self._ended(call_id))
        elif op in ("items", "end") and message.get("id") in self.sessions:
            self.sessions[message["id"]].put_nowait(message.get("items") if op == "items" else None)
        elif op == "cancel" and message.get("id") in self.tasks:
            self.tasks[message["id"]].cancel()
        elif op == "event_reply" and message.get("req") in self.replies:
            future = self.replies.pop(message["req"])
            if not future.done():
                future.set_result(message.get("value"))

    def _ended(self, call_id: str) -> None:
        self.tasks.pop(call_id, None)
        self.sessions.pop(call_id, None)

    def plugin(self, message: dict[str, Any]) -> LoadedFunction:
        from open_webui._host import loading

        # The module loads with read-only host data for its code's saver (the load
        # token, given back at once when the code is loaded already), never as the caller.
        with loading(message.pop("load_token", None)):
            sha = message["sha256"]
            if sha in self.plugins:
                return self.plugins[sha]
            with self.loading.setdefault(sha, threading.Lock()):  # one load per version
                return self._load(sha, message)

    def _load(self, sha: str, message: dict[str, Any]) -> LoadedFunction:
        if sha not in self.plugins:
            source = message.get("source") or self.sources.get(sha)
            if source is None:
                raise LookupError(f"source {sha[:12]} not sent")
            function_id = message["function_id"]
            loaded = load_source(source, function_id=function_id, source_dir=self.source_dir)
            for old_sha, old in list(self.plugins.items()):
                if old.function_id == function_id:  # an older version of the same code
                    # Its source stays: the server may roll back to it without resending.
                    del self.plugins[old_sha]
                    self._forget(old_sha)
                    old.close()
            self.plugins[sha] = loaded
        return self.plugins[sha]

    def _forget(self, sha: str) -> None:
        self.valves_cache.forget(sha)
        for key in [key for key in self.signatures if key[0] == sha]:
            del self.signatures[key]

    def accepted(self, sha: str, hook: str, func: Any) -> tuple[frozenset[str], bool]:
        """A hook's accepted_names, read once per code version: each call's instance is
        a fresh copy, but its hook is the same function (asked again if it is not)."""
        key = getattr(func, "__func__", func)
        known = self.signatures.get((sha, hook))
        if known is not None and known[0] is key:
            return known[1]
        names = accepted_names(func)
        self.signatures[(sha, hook)] = (key, names)
        return names

    def context(self, call_id: str, data: dict[str, Any]) -> CallContext:
        async def emit(event: dict) -> None:
            await self.out.send({"op": "event", "id": call_id, "event": event})

        async def ask(event: dict) -> Any:
            req = f"{call_id}:{len(self.replies)}:{id(event)}"
            future = asyncio.get_running_loop().create_future()
            self.replies[req] = future
            await self.out.send({"op": "event_call", "id": call_id, "req": req, "event": event})
            return await future

        request = data.get("request")
        if request and request.get("ref"):
            if request["ref"] not in self.requests:
                raise LookupError(f"request {request['ref'][:12]} not sent")
            request = self.requests[request["ref"]]
        fields = data | {"request": plugin_request(request)}
        calling_request.set(fields["request"])  # open_webui.main.app.state, for this call
        return CallContext(**fields, event_emitter=emit, event_call=ask)

    def prepared(self, message: dict[str, Any]):
        """A private copy of the plugin's instance with this call's valves, validated here:
        stored global valves that no longer fit fail the call and say so; a user's bad
        user valves fall back to the defaults, as in Open WebUI."""
        loaded = self.plugin(message)
        instance = copy.copy(loaded.instance)
        valves_cls, user_cls = loaded.valves_class, loaded.user_valves_class
        build = functools.partial(self.valves_cache.build, loaded.sha256)
        if valves_cls is not None and message.get("valves") is not None:
            valves, errors = build(valves_cls, message["valves"])
            if errors is not None:
                raise InvalidValves(
                    f"The stored valves of function {message['function_id']!r} no longer fit "
                    f"its Valves: {_summary(errors)}. Edit them to fix this."
                )
            instance.valves = valves
        user_valves = None
        if user_cls is not None:
            user_valves, errors = build(user_cls, message.get("user_valves") or {})
            if errors is not None:
                log.warning(
                    "user valves of %s ignored: %s", message["function_id"], _summary(errors)
                )
                user_valves, _ = build(user_cls, {})
        return instance, user_valves

    def valves(self, message: dict[str, Any]) -> dict[str, Any]:
        """Validate values with the plugin's Valves or UserValves, and/or resolve the
        spec's dynamic option lists for a viewer."""
        loaded = self.plugin(message)
        cls = loaded.user_valves_class if message["which"] == "UserValves" else loaded.valves_class
        if cls is None:
            return {"missing": True}
        answer: dict[str, Any] = {}
        if message.get("values") is not None:
            answer |= validate_valves(cls, message["values"])
        if message.get("spec") is not None:
            answer["options"] = resolve_options(cls, message["spec"], message.get("user"))
        return answer

    async def invoke(self, message: dict[str, Any]) -> Any:
        instance, user_valves = self.prepared(message)
        func = getattr(instance, message["hook"])
        if not callable(func):
            return func  # e.g. a manifold's `pipes` list
        context = self.context(message["id"], message.get("context") or {})
        hook_id = message.get("hook_id") or message["function_id"]
        accepted = self.accepted(message["sha256"], message["hook"], func)
        extra = kwargs_for(func, context, id=hook_id, user_valves=user_valves, accepted=accepted)
        data_name = message.get("data_name", "body")
        if data_name is None:  # hooks without a data argument, e.g. pipes()
            args, kwargs = (), extra
        else:
            args, kwargs = hook_arguments(func, data_name, message.get("data"), extra, accepted)
        if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
            result = func(*args, **kwargs)
        else:
            result = await self.steps.run(func, *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def handle_call(self, message: dict[str, Any]) -> None:
        call_id = message["id"]
        from open_webui._host import current_call

        # Host-data requests carry the call's token: the server refuses any other.
        current_call.set(message.get("token"))
        steps = [0]
        running_steps.set(steps)
        try:
            await self._run_call(call_id, message)
        except asyncio.CancelledError:
            error = error_message(call_id, "Cancelled", "the call was cancelled")
            error["stuck"] = steps[0] > 0  # a sync step spins on in its thread
            await self.out.send(error)
        except FrameTooLarge as exc:
            await self.out.send(error_message(call_id, "FrameTooLarge", str(exc)))
        except SourceError as exc:
            await self.out.send(error_message(call_id, "SourceError", exc.messages[0]))
        except InvalidValves as exc:
            await self.out.send(error_message(call_id, "InvalidValves", str(exc)))
        except BaseException as exc:  # a plugin may raise anything, SystemExit included
            leave_if_forked(failed=True)
            await self.out.send(error_message(call_id, type(exc).__name__, str(exc), exc))

    async def _run_call(self, call_id: str, message: dict[str, Any]) -> None:
        if message["op"] == "valves":
            # Loaded here, on the loop's thread, as for a hook call: plugin module code
            # always runs where it would in Open WebUI, and no two threads load it.
            self.plugin(message)
            value = await self.steps.run(self.valves, message)
            await self.out.send({"op": "result", "id": call_id, "value": value})
            return
        if message.get("session"):
            await self.session(call_id, message)
            return
        result = await self.invoke(message)
        leave_if_forked()
        if message.get("stream"):
            await self.stream(call_id, result)
        else:
            await self.out.send({"op": "result", "id": call_id, "value": to_wire(result)})

    async def stream(self, call_id: str, result: Any) -> None:
        """Send stream items, batching those that pile up while a write is in flight; the
        last frame says it is the end (an answer known at once is one frame)."""
        plain = plain_chunks(result)
        if plain is not None:
            await self._send_items(call_id, [_item(chunk) for chunk in plain], last=True)
            return
        # Bounded: a plugin that yields faster than the server takes waits for it.
        queue: asyncio.Queue = asyncio.Queue(maxsize=STREAM_AHEAD)
        sender = asyncio.create_task(self._send_batches(call_id, queue))
        ending = _FAILED  # until the stream is done: what was sent must not say "last"
        try:
            async for chunk in stream_pipe(result, executor=self.steps):
                if sender.done():
                    break  # it failed (an oversized frame, say); its error is raised below
                await queue.put(_item(chunk))
            else:
                ending = _END
        finally:
            if not sender.done():
                await queue.put(ending)
            await sender

    async def _send_batches(self, call_id: str, queue: asyncio.Queue) -> None:
        first = True
        while True:
            items = [await queue.get()]
            if not first:
                # One loop turn lets items produced meanwhile join this frame; the
                # stream's first item is never held back.
                await asyncio.sleep(0)
            first = False
            while not queue.empty():
                items.append(queue.get_nowait())
            ending = items.pop() if items[-1] is _END or items[-1] is _FAILED else None
            if items or ending is _END:
                await self._send_items(call_id, items, last=ending is _END)
            if ending is not None:
                return

    async def _send_items(self, call_id: str, items: list[dict], *, last: bool) -> None:
        frames = _frames(items) or [[]]
        for index, frame in enumerate(frames):
            message = {"op": "chunks", "id": call_id, "items": frame}
            if last and index == len(frames) - 1:
                message["last"] = True
            await self.out.send(message)

    async def _in_thread(self, one: Callable[[Any], Any], items: list) -> tuple:
        """A sync hook over a batch: one thread step per batch, not per event, and never
        on the loop's thread. Cancelled (its client left), the step stops after the
        event it is on and is waited for a moment: no thread of it left running, the
        worker need not go."""
        stop = threading.Event()
        step = asyncio.ensure_future(self.steps.run(_each, one, items, stop))
        try:
            return await asyncio.shield(step)
        except asyncio.CancelledError:
            stop.set()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(step), STOP_GRACE_SECONDS)
            raise

    async def session(self, call_id: str, message: dict[str, Any]) -> None:
        """A stream-hook session: the hook over each input batch, one "results" answer
        per batch (each event's value, or why it failed), until the input ends."""
        instance, user_valves = self.prepared(message)
        func = getattr(instance, message["hook"])
        context = self.context(call_id, message.get("context") or {})
        accepted = self.accepted(message["sha256"], message["hook"], func)
        hook_id = message.get("hook_id") or message["function_id"]
        extra = kwargs_for(func, context, id=hook_id, user_valves=user_valves, accepted=accepted)
        one = _one_call(func, message.get("data_name") or "event", extra, accepted)
        inputs = self.sessions[call_id]
        while (items := await inputs.get()) is not None:
            if inspect.iscoroutinefunction(func):
                values, failed = await _each_on_loop(one, items)
            else:
                values, failed, awaiting = await self._in_thread(one, items)
                await _awaited_values(values, failed, awaiting)
            leave_if_forked()
            await self.out.send({"op": "results", "id": call_id, "items": values, "failed": failed})
        await self.out.send({"op": "result", "id": call_id, "value": None})


_END, _FAILED = object(), object()  # how a pipe's stream ended, for its sender
# What a hook returns that goes on the wire as it is (a stream hook's usual dict).
_PLAIN = (dict, str, type(None), int, float, bool, list)


def _item(chunk: Chunk) -> dict[str, Any]:
    return {"t": chunk.text, "d": chunk.data, "done": chunk.done}


def _one_call(func: Any, data_name: str, extra: dict, accepted) -> Callable[[Any], Any]:
    """A session's hook for one event: each call gets a fresh `__user__` dict, as each
    hook call does (plugins mutate it)."""
    if not callable(func):
        return lambda item: func
    user = extra.get("__user__")

    def one(item: Any) -> Any:
        fresh = extra if user is None else {**extra, "__user__": dict(user)}
        args, kwargs = hook_arguments(func, data_name, item, fresh, accepted)
        return func(*args, **kwargs)

    return one


def _each(
    one: Callable[[Any], Any], items: list, stop: threading.Event
) -> tuple[list, list, list[int]]:
    """A sync hook over a batch, in a worker thread: each event's wire value, or its
    failure as [index, type, message] (the session goes on), and where it returned
    something to await (on the loop, afterwards). Stops early when told to."""
    values: list = []
    failed: list = []
    awaiting: list[int] = []
    for index, item in enumerate(items):
        if stop.is_set():
            break
        try:
            value = one(item)
            if type(value) not in _PLAIN:
                if inspect.isawaitable(value):
                    awaiting.append(index)
                else:
                    value = to_wire(value)
        except Exception as exc:
            value = None
            failed.append([index, type(exc).__name__, str(exc)])
        values.append(value)
    return values, failed, awaiting


async def _each_on_loop(one: Callable[[Any], Any], items: list) -> tuple[list, list]:
    values: list = []
    failed: list = []
    for index, item in enumerate(items):
        try:
            value = one(item)
            if type(value) not in _PLAIN:
                value = to_wire(await value if inspect.isawaitable(value) else value)
        except Exception as exc:
            value = None
            failed.append([index, type(exc).__name__, str(exc)])
        values.append(value)
    return values, failed


async def _awaited_values(values: list, failed: list, awaiting: list[int]) -> None:
    """What a sync hook returned to be awaited (a coroutine), awaited here, on the loop."""
    for index in awaiting:
        try:
            values[index] = to_wire(await values[index])
        except Exception as exc:
            values[index] = None
            failed.append([index, type(exc).__name__, str(exc)])


class ValvesCache:
    """Validated Valves and UserValves, by code version, class and stored values (plugin
    validators may be slow). Each call gets its own copy, never the kept instance: a
    deep one when a field holds something mutable, so no call sees another's changes."""

    def __init__(self, size: int = VALVES_CACHE_SIZE) -> None:
        self.size = size
        self.entries: dict[tuple, tuple[BaseModel | None, dict | None, bool]] = {}

    def build(self, sha: str, cls: type[BaseModel], values: dict) -> tuple[Any, dict | None]:
        try:
            key = (sha, cls, msgpack.packb(values, use_bin_type=True))
        except Exception:  # values msgpack cannot key on: validate them each time
            return build_valves(cls, values)
        entry = self.entries.get(key)
        if entry is None:
            instance, errors = build_valves(cls, values)
            entry = (instance, errors, instance is not None and _mutable(instance))
            self.entries[key] = entry
            while len(self.entries) > self.size:
                self.entries.pop(next(iter(self.entries)))
        instance, errors, deep = entry
        if instance is None:
            return None, errors
        return instance.model_copy(deep=deep), None

    def forget(self, sha: str) -> None:
        for key in [key for key in self.entries if key[0] == sha]:
            del self.entries[key]


def _mutable(instance: BaseModel) -> bool:
    values = [*instance.__dict__.values(), *(instance.__pydantic_extra__ or {}).values()]
    return bool(instance.__pydantic_private__) or not all(
        isinstance(value, _IMMUTABLE) for value in values
    )


# Stream items go in frames of at most about this many bytes, far below MAX_FRAME: a
# run of ordinary chunks never makes one oversized frame.
BATCH_BYTES = 4 * 1024 * 1024


def _frames(items: list[dict]) -> list[list[dict]]:
    frames: list[list[dict]] = [[]]
    size = 0
    for item in items:
        item_size = len(item.get("t") or "") + (len(repr(item["d"])) if item.get("d") else 0)
        if frames[-1] and size + item_size > BATCH_BYTES:
            frames.append([])
            size = 0
        frames[-1].append(item)
        size += item_size
    return [frame for frame in frames if frame]


def _summary(errors: dict[str, list[str]]) -> str:
    return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())


def error_message(call_id: str, kind: str, message: str, exc: BaseException | None = None):
    trace = "".join(traceback.format_exception(exc)) if exc is not None else ""
    return {"op": "error", "id": call_id, "type": kind, "message": message, "traceback": trace}


def to_wire(value: Any) -> Any:
    """Turn a hook's return value into something msgpack carries."""
    if type(value) in _PLAIN:  # most values: nothing to turn (a dict is no Response)
        return value
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    html = html_of(value)
    if html is not None:
        return {"__html__": html}
    return response_value(value)


async def main(fd: int, source_dir: str) -> None:
    sock = socket.socket(fileno=fd)
    reader, raw_writer = await asyncio.open_connection(sock=sock, limit=2**20)
    writer = Writer(raw_writer)
    worker = Worker(writer, source_dir)
    await writer.send({"op": "ready", "pid": os.getpid()})
    while (message := await read_message(reader)) is not None:
        worker.dispatch(message)
    # The server is gone. Leave now, even if a plugin thread is still spinning:
    # a normal interpreter exit would wait for it forever.
    os._exit(0)


if __name__ == "__main__":
    import django

    django.setup()  # fnplatform.worker_settings: no database, no server secrets
    # By its plugin-facing name: that is the module the shims' `hosted` lives in.
    from open_webui import _host

    _host.connect(int(sys.argv[3]))
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
