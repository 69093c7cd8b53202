"""The server's side of one worker, whatever carries its messages.

A WorkerConnection runs calls: it sends each with an unguessable token (host-data
requests are answered only for a live call's token) and, when the worker is to
load that code, a load token (answered read-only, for the code's saver, until the
worker gives it back once the module is loaded), yields the call's chunk
batches until its result, passes events on and answers `__event_call__` questions
on the side, and enforces deadlines: a call past its deadline fails, and its worker
is killed unless the call let go with no thread of it still running. Each call's
messages are bounded (backpressure reaches the plugin), and a message of the wrong
shape ends the worker. Subclasses carry the messages (functions.workers.process,
and the test-only functions.workers.inline).
"""

import asyncio
import contextlib
import logging
import secrets
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
from functions.workers.limits import KILL_GRACE_SECONDS, Limits
from functions.workers.protocol import remember_request

log = logging.getLogger(__name__)

EventCallback = Callable[[dict], Awaitable[Any]]
HostCallback = Callable[[str, list, dict], Awaitable[Any]]
# Message batches of one call the server holds before it stops reading from the
# worker: the worker's writes then block, and a plugin that yields faster than the
# client reads waits instead of growing the server's memory.
INBOX_SIZE = 64


class CallInbox:
    """The messages of one call, bounded; closed when the call ends (its caller gone)."""

    def __init__(self, size: int = INBOX_SIZE) -> None:
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=size)
        self.closed = False
        self.pressured = False  # it filled up: its reader (the client) was the slow one

    async def put(self, message: dict) -> None:
        """Wait for room, unless the call is over (a late message is dropped)."""
        while not self.closed:
            try:
                self.queue.put_nowait(message)
                return
            except asyncio.QueueFull:
                self.pressured = True
                await asyncio.sleep(0.005)

    def put_final(self, message: dict) -> None:
        """A crash notice: always delivered, whatever the room."""
        if not self.closed:
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(message)
                return
            self.queue.get_nowait()  # the call fails anyway: make room for why
            self.queue.put_nowait(message)


_SHAPES: dict[str, dict[str, type | tuple]] = {
    "chunks": {"items": list},
    "result": {},
    "error": {"type": str, "message": str},
    "event": {"event": dict},
    "event_call": {"event": dict, "req": str},
}


def malformed(message: Any) -> str | None:
    """What is wrong with a worker's message, or None when it has the shape we expect."""
    if not isinstance(message, dict) or not isinstance(message.get("id"), str):
        return "not a message of a call"
    shape = _SHAPES.get(message.get("op"))  # type: ignore[arg-type]
    if shape is None:
        return f"unknown op {str(message.get('op'))[:40]!r}"
    for key, kind in shape.items():
        if not isinstance(message.get(key), kind):
            return f"{message['op']} without a valid {key!r}"
    if message["op"] == "result" and "value" not in message:
        return "result without a value"
    if message["op"] == "chunks":
        return next(filter(None, (_bad_item(item) for item in message["items"])), None)
    if message["op"] == "error" and not isinstance(message.get("traceback", ""), str):
        return "error with a bad traceback"
    return None


def _bad_item(item: Any) -> str | None:
    if not isinstance(item, dict) or not isinstance(item.get("done"), bool):
        return "a stream item without 'done'"
    if not isinstance(item.get("t") or "", str) or not isinstance(item.get("d") or {}, dict):
        return "a stream item of the wrong types"
    return None


class WorkerConnection:
    """The server's side of one worker: calls, their messages, deadlines and events.

    Subclasses carry the messages: WorkerProcess over a socket to a sandboxed
    process; the test-only inline worker straight to the worker code in this process.
    """

    limits: Limits

    def __init__(self) -> None:
        self.calls: dict[str, CallInbox] = {}
        # Host-data requests are answered only for a live call's token, on this connection.
        self.host_handlers: dict[str, HostCallback] = {}
        self.load_tokens: set[str] = set()
        self.load_token_of: dict[str, str] = {}  # a call's token -> its load token
        self.known_sources: set[str] = set()
        # Refs of the requests this worker holds: the same ones, in the same order, as
        # the worker's own cache (functions.workers.worker), so a ref sent is a ref known.
        self.known_requests: dict[str, None] = {}
        # The code version each function last ran here: a call for another one makes the
        # worker load it, so it carries a load token (the worker keeps one per function).
        self.loaded: dict[str, str] = {}
        self.served = 0
        self.dead = False
        self.retiring = False  # finish the calls it has, then make way for a fresh worker
        self.culprit: str | None = None  # the call whose deadline had this worker killed
        self._tasks: set[asyncio.Task] = set()

    async def send(self, message: dict[str, Any]) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def tail(self) -> str:
        return ""

    def worn_out(self, max_calls: int) -> bool:
        return self.dead or self.retiring or self.served >= max_calls

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver(self, message: Any) -> None:
        """Hand a worker's message to its call. A message of the wrong shape (a plugin
        writing on its worker's socket, say) ends the worker: its calls fail, as a crash."""
        problem = malformed(message)
        if problem:
            log.warning("A worker sent a malformed message (%s) and is stopped", problem)
            self.kill()
            self.fail_all(f"the worker process sent a malformed message ({problem})")
            return
        inbox = self.calls.get(message["id"])
        if inbox is not None:
            await inbox.put(message)
        elif message["op"] == "error" and message.get("stuck"):
            # A call its caller left (a disconnect) still has a thread spinning: no
            # thread outlives its call, so the worker goes (at once if it is idle).
            self.retiring = True
            if not self.calls:
                self.kill()

    def fail_all(self, reason: str) -> None:
        for call_id, inbox in self.calls.items():
            collateral = self.culprit is not None and call_id != self.culprit
            inbox.put_final({"op": "crashed", "message": reason, "collateral": collateral})

    async def answer_host(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run a worker's host-data request for the call whose token it carries."""
        token = str(request.get("call") or "")
        handler = self.host_handlers.get(token)
        if handler is None:
            return {"ok": False, "error": "refused: not the token of a call in progress here"}
        if request.get("release"):
            if token in self.load_tokens:  # a call's own token is never given back
                self.host_handlers.pop(token, None)
            return {"ok": True, "value": None}
        self._loaded_by(token)
        try:
            value = await handler(request["name"], request["args"], request["kwargs"])
            return {"ok": True, "value": value}
        except Exception as exc:  # the plugin sees it as a HostError with this text
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def _loaded_by(self, token: str) -> None:
        """The call whose token this is has its hook running: its module has loaded, so
        its load token goes, whether or not the worker gives it back (plugin code owns
        that process and could keep it)."""
        load_token = self.load_token_of.pop(token, None)
        if load_token is not None:
            self.host_handlers.pop(load_token, None)

    async def call(
        self,
        request: dict[str, Any],
        *,
        on_event: EventCallback,
        on_event_call: EventCallback,
        timeout: float | None,
        first_timeout: float | None = None,
        on_host: HostCallback | None = None,
        on_load_host: HostCallback | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Run one call; yield its chunk batches; return at its result, raise on failure.

        `on_load_host` serves the host data the plugin's module asks for while it
        loads (the read-only scope of its saver), if this call makes the worker load it."""
        call_id = request["id"]
        inbox = CallInbox()
        self.calls[call_id] = inbox
        token = secrets.token_urlsafe(24)
        if on_host is not None:
            self.host_handlers[token] = on_host
        tokens = {"token": token}
        function_id, sha = request.get("function_id"), request.get("sha256")
        if on_load_host is not None and self.loaded.get(function_id) != sha:
            tokens["load_token"] = load_token = secrets.token_urlsafe(24)
            self.host_handlers[load_token] = on_load_host
            self.load_tokens.add(load_token)
            self.load_token_of[token] = load_token
        self.served += 1
        finished = False
        try:
            await self._send_call({**request, **tokens})
            budgets = (timeout, first_timeout)
            async for message in self._messages(inbox, call_id, budgets, request):
                if function_id:
                    self.loaded[function_id] = sha  # it answered: that code is loaded
                self._loaded_by(token)
                if message["op"] in ("event", "event_call"):
                    await self._event(message, call_id, on_event, on_event_call)
                else:
                    finished = finished or message["op"] == "result"
                    yield message
        except WorkerError:
            finished = True  # the worker already ended the call (error, crash or timeout)
            raise
        finally:
            inbox.closed = True
            self.calls.pop(call_id, None)
            self.load_token_of.pop(token, None)
            for key in tokens.values():
                self.host_handlers.pop(key, None)
                self.load_tokens.discard(key)
            if not finished and not self.dead:
                # The caller went away (disconnect, stop): stop the plugin too.
                self._spawn(self._cancel_quietly(call_id))

    async def _event(self, message, call_id, on_event, on_event_call) -> None:
        """Pass an event on, or answer a question on the side (the call keeps streaming
        while a user decides). A callback that refuses (a limit) stops the plugin too."""
        try:
            if message["op"] == "event":
                await on_event(message["event"])
            else:
                # Asked here (a refusal raises now); answered when the user replies.
                self._spawn(self._answer(message, on_event_call(message["event"])))
        except WorkerError:
            self._spawn(self._cancel_quietly(call_id))
            raise

    async def _cancel_quietly(self, call_id: str) -> None:
        with contextlib.suppress(Exception):
            await self.send({"op": "cancel", "id": call_id})

    async def _send_call(self, request: dict[str, Any]) -> None:
        if self.dead:
            raise WorkerCrashed("the worker process is not running")
        message = dict(request)
        if request["sha256"] in self.known_sources:
            message.pop("source", None)
        ref = self._request_ref(message)
        await self.send(message)
        self.known_sources.add(request["sha256"])
        if ref:
            remember_request(self.known_requests, ref)

    def _request_ref(self, message: dict[str, Any]) -> str | None:
        """A call's `__request__` goes in full once per worker, then by its ref: a stream
        filter is called for every chunk of an answer."""
        context = message.get("context") or {}
        data = context.get("request")
        if not data or not data.get("ref"):
            return None
        if data["ref"] in self.known_requests:
            message["context"] = {**context, "request": {"ref": data["ref"]}}
            return None
        return data["ref"]

    async def _messages(self, inbox, call_id, budgets, request) -> AsyncIterator[dict]:
        loop = asyncio.get_running_loop()
        timeout, first_timeout = budgets
        deadline = loop.time() + timeout if timeout else None
        first = loop.time() + first_timeout if first_timeout else None
        while True:
            limits = [d for d in (deadline, first) if d is not None]
            wait = min(limits) - loop.time() if limits else None
            message = None
            if wait is None or wait > 0:
                # Checked on every message, not only when the inbox runs dry: a plugin
                # that yields forever is stopped at its deadline all the same.
                with contextlib.suppress(TimeoutError):
                    message = await asyncio.wait_for(inbox.queue.get(), wait)
            if message is None:
                expired_first = first is not None and (deadline is None or first < deadline)
                limit = first_timeout if expired_first else timeout
                await self._expire(call_id, limit, request, first=expired_first)
            op = message["op"]
            if op in ("chunks", "result"):
                first = None
            if op == "result":
                yield message
                return
            if op == "crashed":
                raise WorkerCrashed(
                    f"Function {request['function_id']} failed: {message['message']}",
                    collateral=bool(message.get("collateral")),
                )
            if op == "error":
                raise self._failure(message, request["function_id"])
            yield message

    def _failure(self, message: dict, function_id: str) -> WorkerError:
        kind = message["type"]
        if kind == "FrameTooLarge":
            return LimitExceeded(f"Function {function_id} failed: {message['message']}")
        if kind == "InvalidValves":
            return InvalidStoredValves(message["message"])
        limit = self.limits.describe(kind, message["message"])
        if kind == "BlockingIOError" and not (
            self._at_process_limit() or "fork" in message.get("traceback", "")
        ):
            limit = None  # a non-blocking socket, say: the plugin's own business
        if limit is None:
            return PluginFailed(message["message"], kind, message.get("traceback", ""))
        self.retiring = True  # whatever it left behind (children, heap) goes with it
        return LimitExceeded(f"Function {function_id} hit {limit} ({kind}: {message['message']})")

    def _at_process_limit(self) -> bool:
        return False

    async def _expire(self, call_id: str, timeout: float, request: dict, *, first=False) -> None:
        """Fail a call past its deadline. Its worker is killed (and so replaced) unless the
        call lets go at once with no thread of it left running: no work outlives its call."""
        let_go = False
        inbox = self.calls[call_id]
        if not self.dead:
            with contextlib.suppress(Exception):
                await self.send({"op": "cancel", "id": call_id})
            let_go = await self._let_go(inbox)
        if not let_go:
            self.culprit = self.culprit or call_id
            self.kill()
        what = "first-chunk time limit" if first else "time limit"
        raise CallTimeout(
            f"Function {request['function_id']} exceeded its {what} of {timeout:g} s",
            backpressured=inbox.pressured,
        )

    async def _let_go(self, inbox: CallInbox) -> bool:
        try:
            while True:
                message = await asyncio.wait_for(inbox.queue.get(), KILL_GRACE_SECONDS)
                if message["op"] in ("error", "result", "crashed"):
                    return not message.get("stuck") and message["op"] != "crashed"
        except TimeoutError:
            return False

    async def _answer(self, message: dict, reply: Awaitable[Any]) -> None:
        value: Any = {"error": "The question could not be asked."}
        try:
            value = await reply
        except Exception:
            log.exception("Answering a plugin's __event_call__ failed")
        finally:
            if not self.dead:
                with contextlib.suppress(Exception):
                    await self.send({"op": "event_reply", "req": message["req"], "value": value})

    async def stop(self) -> None:
        self.kill()
        for task in list(self._tasks):
            task.cancel()
