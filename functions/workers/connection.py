"""The server's side of one worker, whatever carries its messages.

A WorkerConnection runs calls: it sends each with an unguessable token (host-data
requests are answered only for a live call's token) and, when the worker is to
load that code, a load token (answered read-only, for the code's saver, until the
worker gives it back once the module is loaded), yields the call's chunk
batches until its result (or its "last" batch), passes events on and answers
`__event_call__` questions on the side, and enforces deadlines (one timer per call):
a call past its deadline fails, and its worker is killed unless the call let go with
no thread of it still running. A call's clock stops while a question of it waits for
its answer (a user's dialog has a timeout of its own: chat.services.dialogs). Each
call's messages are bounded (backpressure reaches the plugin), and a message of the
wrong shape ends the worker.

A session (`session`) is one call for a stream hook over one answer: input batches
go out as they come ("items", then "end"), a few ahead of their answers (pipelining,
and no further: backpressure), each held to the call's timeout from when the worker
could take it; "results" come back one per batch, in order, and one that matches no
batch sent ends the worker as a malformed message would.

Subclasses carry the messages (functions.workers.process, and the test-only
functions.workers.inline).
"""

import asyncio
import contextlib
import logging
import secrets
from collections import deque
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
from functions.workers.protocol import FrameTooLarge, remember_request

log = logging.getLogger(__name__)

EventCallback = Callable[[dict], Awaitable[Any]]
HostCallback = Callable[[str, list, dict], Awaitable[Any]]
# Input batches of a stream-hook session sent and not yet answered: the server reads
# ahead of a session this far (pipelining), and no further (backpressure).
SESSION_IN_FLIGHT = 4
# Message batches of one call the server holds before it stops reading from the
# worker: the worker's writes then block, and a plugin that yields faster than the
# client reads waits instead of growing the server's memory.
INBOX_SIZE = 64


class CallInbox:
    """The messages of one call, bounded; closed when the call ends (its caller gone).

    Its reader waits on one future, woken by a message or by the call's deadline timer
    (one timer per call, re-armed only when the deadline moves: no timeout per message).
    """

    def __init__(self, size: int = INBOX_SIZE) -> None:
        self.items: deque[dict] = deque()
        self.size = size
        self.closed = False
        self.pressured = False  # it filled up: its reader (the client) was the slow one
        self.on_answer: Callable[[], None] | None = None  # a session's, as answers arrive
        self._reader: asyncio.Future | None = None

    async def put(self, message: dict) -> None:
        """Wait for room, unless the call is over (a late message is dropped)."""
        while not self.closed and len(self.items) >= self.size:
            self.pressured = True
            await asyncio.sleep(0.005)
        if not self.closed:
            self.items.append(message)
            self.wake()

    def put_final(self, message: dict) -> None:
        """A crash notice: always delivered, whatever the room."""
        if not self.closed:
            if len(self.items) >= self.size:
                self.items.popleft()  # the call fails anyway: make room for why
            self.items.append(message)
            self.wake()

    def wake(self) -> None:
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    async def get(self) -> dict | None:
        """The next message; None when woken without one (a deadline, say)."""
        if not self.items:
            self._reader = reader = asyncio.get_running_loop().create_future()
            try:
                await reader
            finally:
                self._reader = None
            if not self.items:
                return None
        return self.items.popleft()


class Deadline:
    """One timer that wakes a call's inbox at its deadline, moved only when it changes."""

    def __init__(self, inbox: CallInbox) -> None:
        self.inbox = inbox
        self.at: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._fired = False

    def arm(self, at: float | None) -> None:
        # Again after it fired: the loop may run a timer a hair before its time.
        if at == self.at and not self._fired:
            return
        self.cancel()
        self.at = at
        if at is not None:
            self._timer = asyncio.get_running_loop().call_at(at, self._fire)

    def _fire(self) -> None:
        self._fired = True
        self.inbox.wake()

    def passed(self) -> bool:
        return self.at is not None and asyncio.get_running_loop().time() >= self.at

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self.at, self._fired = None, None, False


_SHAPES: dict[str, dict[str, type | tuple]] = {
    "chunks": {"items": list},
    "results": {"items": list, "failed": list},
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
        if not isinstance(message.get("last", False), bool):
            return "chunks with a bad 'last'"
        return next(filter(None, (_bad_item(item) for item in message["items"])), None)
    if message["op"] == "results":
        size = len(message["items"])
        return next(filter(None, (_bad_failure(entry, size) for entry in message["failed"])), None)
    if message["op"] == "error" and not isinstance(message.get("traceback", ""), str):
        return "error with a bad traceback"
    return None


def _bad_item(item: Any) -> str | None:
    if not isinstance(item, dict) or not isinstance(item.get("done"), bool):
        return "a stream item without 'done'"
    if not isinstance(item.get("t") or "", str) or not isinstance(item.get("d") or {}, dict):
        return "a stream item of the wrong types"
    return None


def _bad_failure(entry: Any, size: int) -> str | None:
    """A session's failed item: [index in its batch, exception type, message]."""
    if not (isinstance(entry, list) and len(entry) == 3):
        return "a failed item that is not [index, type, message]"
    index, kind, text = entry
    if type(index) is not int or not 0 <= index < size:
        return "a failed item outside its batch"
    if not (isinstance(kind, str) and isinstance(text, str)):
        return "a failed item of the wrong types"
    return None


class InputFailed(Exception):
    """A session's input raised (its pipe failed, say): not the session's doing."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _Running:
    """One call in progress on a connection: its id, inbox and tokens."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.inbox = CallInbox()
        self.tokens = {"token": secrets.token_urlsafe(24)}
        self.finished = False  # the worker ended it: nothing to cancel there
        # Its questions waiting for an answer, since when, and the time it spent so.
        self.asking = 0
        self.asked_at = 0.0
        self.paused = 0.0

    def ask(self) -> None:
        if not self.asking:
            self.asked_at = asyncio.get_running_loop().time()
        self.asking += 1

    def answered(self) -> None:
        """A question was answered: when none waits any more, its clock runs again."""
        self.asking -= 1
        if not self.asking:
            self.paused += asyncio.get_running_loop().time() - self.asked_at
            self.inbox.wake()  # its deadline moves


class _SessionState:
    """A session's unanswered batches (their sizes and when each was sent), its bound
    on them, and how its input ended."""

    def __init__(self, inbox: CallInbox, in_flight: int, slot: asyncio.Semaphore | None) -> None:
        self.inbox, self.slot = inbox, slot
        self.room = asyncio.Semaphore(in_flight)
        self.pending: deque[tuple[int, float]] = deque()
        self.at_worker = 0  # batches sent whose answer has not arrived yet
        self.holding = False  # the function's concurrency slot, while it has any
        inbox.on_answer = self.arrived
        self.last_answer = 0.0
        self.ended_at: float | None = None
        self.error: Exception | None = None

    def due(self, timeout: float | None) -> float | None:
        """When the oldest batch (or, past the last, the end) must be answered by: its
        time counts from when it was sent or the batch before it was answered."""
        if not timeout:
            return None
        if self.pending:
            start = self.pending[0][1]
        elif self.ended_at is not None:
            start = self.ended_at
        else:
            return None  # waiting for input: no deadline
        return max(start, self.last_answer) + timeout

    async def busy(self) -> None:
        """A batch goes to the worker: while it has any, the session holds one slot of
        the function's cap, as one call would (not one per batch, and not while its
        answers wait for a slow client: the function's other calls would wait too)."""
        if self.at_worker == 0 and self.slot is not None and not self.holding:
            await self.slot.acquire()
            self.holding = True
        self.at_worker += 1

    def arrived(self) -> None:
        self.at_worker = max(0, self.at_worker - 1)
        if self.at_worker == 0:
            self.release_slot()

    def answered(self, now: float) -> None:
        self.pending.popleft()
        self.last_answer = now
        self.room.release()

    def release_slot(self) -> None:
        if self.holding and self.slot is not None:
            self.slot.release()
        self.holding = False


async def _aclose(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


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

    async def deliver(self, message: Any, size: int = 0) -> None:
        """Hand a worker's message to its call, with the size of its frame (its answers
        are charged to the call's budget by that). A message of the wrong shape (a plugin
        writing on its worker's socket, say) ends the worker: its calls fail, as a crash."""
        problem = malformed(message)
        if problem:
            log.warning("A worker sent a malformed message (%s) and is stopped", problem)
            self.kill()
            self.fail_all(f"the worker process sent a malformed message ({problem})")
            return
        message["size"] = size  # the server's own count, whatever the worker put there
        inbox = self.calls.get(message["id"])
        if inbox is not None:
            if message["op"] == "results" and inbox.on_answer is not None:
                inbox.on_answer()
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
        """Run one call; yield its chunk batches; return at its result (or at a chunk
        batch marked `last`, which is also its end), raise on failure.

        `on_load_host` serves the host data the plugin's module asks for while it
        loads (the read-only scope of its saver), if this call makes the worker load it."""
        async with self._registered(request, on_host, on_load_host) as running:
            await self._send_call({**request, **running.tokens})
            budgets = (timeout, first_timeout)
            async for message in self._messages(running, budgets, request):
                if message["op"] in ("event", "event_call"):
                    await self._event(message, running, on_event, on_event_call)
                    continue
                running.finished = message["op"] == "result" or bool(message.get("last"))
                yield message

    async def session(
        self,
        request: dict[str, Any],
        batches: AsyncIterator[list],
        *,
        on_event: EventCallback,
        on_event_call: EventCallback,
        timeout: float | None,
        in_flight: int = SESSION_IN_FLIGHT,
        slot: asyncio.Semaphore | None = None,
        on_host: HostCallback | None = None,
        on_load_host: HostCallback | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Run a stream-hook session: one call over one answer. Send `batches` as they
        come ("items", then "end"), at most `in_flight` unanswered, holding one slot of
        `slot` (the function's concurrency cap) while the worker has any to answer;
        yield each one's "results", in order; return at the worker's result. Each batch
        must be answered within `timeout` of the worker being free to take it (time spent
        waiting for the next input batch does not count). The session closes `batches`
        when it ends; an error `batches` raises ends it (once what was sent before it is
        answered) and is raised here as InputFailed."""
        async with self._registered(request, on_host, on_load_host) as running:
            await self._send_call({**request, **running.tokens})
            state = _SessionState(running.inbox, in_flight, slot)
            feeder = asyncio.create_task(self._feed(running.call_id, batches, state, request))
            try:
                async for message in self._session_messages(running, state, timeout, request):
                    if message["op"] in ("event", "event_call"):
                        await self._event(message, running, on_event, on_event_call)
                        continue
                    running.finished = message["op"] == "result"
                    if not running.finished:
                        yield message
            finally:
                feeder.cancel()
                with contextlib.suppress(BaseException):
                    await feeder
                state.release_slot()
                with contextlib.suppress(Exception):
                    await _aclose(batches)

    async def _feed(self, call_id: str, batches, state: "_SessionState", request: dict) -> None:
        """Send a session's input batches as they come, within its bound."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    batch = await anext(batches)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise InputFailed(exc) from exc
                await state.room.acquire()
                await state.busy()
                state.pending.append((len(batch), loop.time()))
                await self._send_input({"op": "items", "id": call_id, "items": batch}, request)
                state.inbox.wake()  # its deadline starts
            await self._send_input({"op": "end", "id": call_id}, request)
            state.ended_at = loop.time()
        except Exception as exc:
            state.error = exc
        finally:
            state.inbox.wake()

    async def _send_input(self, message: dict, request: dict) -> None:
        function_id = request["function_id"]
        try:
            await self.send(message)
        except FrameTooLarge as exc:
            raise LimitExceeded(f"Function {function_id} failed: {exc}") from exc
        except WorkerError:
            raise
        except Exception as exc:  # its socket is gone: the crash notice says why
            raise WorkerCrashed(f"Function {function_id} failed: {exc}") from exc

    async def _session_messages(self, running, state, timeout, request) -> AsyncIterator[dict]:
        loop = asyncio.get_running_loop()
        deadline = Deadline(running.inbox)
        try:
            while True:
                # The input's own failure waits for the answers to what was sent before
                # it (those chunks reach the client); any other ends the session now.
                if state.error is not None and not (
                    isinstance(state.error, InputFailed) and state.pending
                ):
                    raise state.error
                deadline.arm(state.due(timeout))
                # An answer already here is taken whatever the time (its reader, the
                # client, was the slow one); events do not stop the clock.
                message = await running.inbox.get()
                if (message is None or message["op"] in ("event", "event_call")) and (
                    deadline.passed()
                ):
                    running.finished = True  # cancelled there, or its worker killed
                    await self._expire(running.call_id, timeout, request)
                if message is None:
                    continue
                self._answered(running, request)
                op = message["op"]
                if op == "results":
                    self._check_answer(message, state, request)
                    state.answered(loop.time())
                elif op == "result" and (state.pending or state.ended_at is None):
                    raise self._broken("a session's result before its last answer", request)
                elif op not in ("result", "event", "event_call"):
                    running.finished = True  # the worker ended it (an error, a crash)
                    raise self._ended_by(message, request)
                yield message
                if op == "result":
                    return
        finally:
            deadline.cancel()

    def _check_answer(self, message: dict, state: "_SessionState", request: dict) -> None:
        """An answer must match the oldest unanswered batch; a failed item that was a
        resource limit ends the session (the worker is replaced after it)."""
        if not state.pending or len(message["items"]) != state.pending[0][0]:
            raise self._broken("a session answer that matches no batch sent", request)
        for _, kind, text in message["failed"]:
            error = self._failure({"type": kind, "message": text}, request["function_id"])
            if isinstance(error, LimitExceeded):
                raise error  # the session is cancelled there as it ends here

    def _broken(self, problem: str, request: dict) -> WorkerCrashed:
        """A worker that breaks the protocol in a well-formed message goes, as for a
        malformed one; the error for the call that saw it."""
        log.warning("A worker sent %s and is stopped", problem)
        self.kill()
        self.fail_all(f"the worker process sent {problem}")
        return WorkerCrashed(f"Function {request['function_id']} failed: the worker sent {problem}")

    @contextlib.asynccontextmanager
    async def _registered(self, request, on_host, on_load_host) -> AsyncIterator["_Running"]:
        """A call's inbox and tokens, for as long as it runs; a call its caller left
        (a disconnect, a stop) is cancelled in the worker too."""
        running = _Running(request["id"])
        self.calls[running.call_id] = running.inbox
        token = running.tokens["token"]
        if on_host is not None:
            self.host_handlers[token] = on_host
        if on_load_host is not None and self.loaded.get(request.get("function_id")) != (
            request.get("sha256")
        ):
            running.tokens["load_token"] = load_token = secrets.token_urlsafe(24)
            self.host_handlers[load_token] = on_load_host
            self.load_tokens.add(load_token)
            self.load_token_of[token] = load_token
        self.served += 1
        try:
            yield running
        finally:
            running.inbox.closed = True
            self.calls.pop(running.call_id, None)
            self.load_token_of.pop(token, None)
            for key in running.tokens.values():
                self.host_handlers.pop(key, None)
                self.load_tokens.discard(key)
            if not running.finished and not self.dead:
                self._spawn(self._cancel_quietly(running.call_id))

    def _answered(self, running: "_Running", request: dict) -> None:
        """The worker answered the call: its code is loaded, and its load token goes."""
        function_id = request.get("function_id")
        if function_id:
            self.loaded[function_id] = request.get("sha256")
        self._loaded_by(running.tokens["token"])

    async def _event(self, message, running: "_Running", on_event, on_event_call) -> None:
        """Pass an event on, or answer a question on the side (the call keeps streaming
        while a user decides). A callback that refuses (a limit) stops the plugin too."""
        try:
            if message["op"] == "event":
                await on_event(message["event"])
            else:
                # Asked here (a refusal raises now); answered when the user replies.
                reply = on_event_call(message["event"])
                running.ask()
                self._spawn(self._answer(message, reply, running))
        except WorkerError:
            self._spawn(self._cancel_quietly(running.call_id))
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
        """A call's `__request__` goes in full once per worker, then by its ref: most
        calls of a request (its filters' hooks) carry the same one."""
        context = message.get("context") or {}
        data = context.get("request")
        if not data or not data.get("ref"):
            return None
        if data["ref"] in self.known_requests:
            message["context"] = {**context, "request": {"ref": data["ref"]}}
            return None
        return data["ref"]

    async def _messages(self, running, budgets, request) -> AsyncIterator[dict]:
        loop = asyncio.get_running_loop()
        timeout, first_timeout = budgets
        due = loop.time() + timeout if timeout else None
        first = loop.time() + first_timeout if first_timeout else None
        deadline = Deadline(running.inbox)
        try:
            while True:
                # No deadline while a question waits for its answer; after, the time
                # spent waiting is added to it.
                limits = [d + running.paused for d in (due, first) if d is not None]
                deadline.arm(None if running.asking else min(limits, default=None))
                # Checked on every message, not only when the inbox runs dry: a plugin
                # that yields forever is stopped at its deadline all the same.
                if deadline.passed():
                    expired_first = first is not None and (due is None or first < due)
                    limit = first_timeout if expired_first else timeout
                    running.finished = True  # cancelled there, or its worker killed
                    await self._expire(running.call_id, limit, request, first=expired_first)
                message = await running.inbox.get()
                if message is None:
                    continue
                self._answered(running, request)
                op = message["op"]
                if op == "chunks" or op == "result":
                    first = None
                elif op not in ("event", "event_call"):
                    running.finished = True  # the worker ended it (an error, a crash)
                    raise self._ended_by(message, request)
                yield message
                if op == "result" or message.get("last"):
                    return
        finally:
            deadline.cancel()

    def _ended_by(self, message: dict, request: dict) -> WorkerError:
        """The error a call ends with: its worker crashed, or it failed there."""
        if message["op"] == "crashed":
            return WorkerCrashed(
                f"Function {request['function_id']} failed: {message['message']}",
                collateral=bool(message.get("collateral")),
            )
        if message["op"] == "error":
            return self._failure(message, request["function_id"])
        return self._broken(f"a {message['op']!r} message this call cannot take", request)

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
        """Whether a cancelled call ends within the grace time, with no thread left."""
        deadline = Deadline(inbox)
        until = asyncio.get_running_loop().time() + KILL_GRACE_SECONDS
        try:
            while not deadline.passed():
                deadline.arm(until)
                message = await inbox.get()
                if message is None:
                    continue
                if message["op"] in ("error", "result", "crashed") or message.get("last"):
                    return not message.get("stuck") and message["op"] != "crashed"
            return False
        finally:
            deadline.cancel()

    async def _answer(self, message: dict, reply: Awaitable[Any], running: "_Running") -> None:
        value: Any = {"error": "The question could not be asked."}
        try:
            value = await reply
        except Exception:
            log.exception("Answering a plugin's __event_call__ failed")
        finally:
            running.answered()
            if not self.dead:
                with contextlib.suppress(Exception):
                    await self.send({"op": "event_reply", "req": message["req"], "value": value})

    async def stop(self) -> None:
        self.kill()
        for task in list(self._tasks):
            task.cancel()
