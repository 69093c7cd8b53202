"""Supervised worker processes, from the server's side.

A WorkerProcess is one `functions.workers.worker` child: started with a
scrubbed environment and resource limits, in its own process group, talking
over a socketpair. A call yields the worker's messages (stream chunks, events)
until its result or error; `__event_call__` questions are answered through a
callback, host-data requests only for the call's own unguessable token. A worker
that dies fails only the calls it was running, with WorkerCrashed; a call past its
deadline fails, and its worker is killed unless the call let go with no thread of
it still running. Each call's messages are bounded (backpressure reaches the
plugin). A WorkerPool holds the workers of one function (or trust group).
"""

import asyncio
import contextlib
import ctypes
import itertools
import logging
import os
import resource
import secrets
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.services.executor import (
    CallTimeout,
    InvalidStoredValves,
    LimitExceeded,
    PluginFailed,
    WorkerCrashed,
    WorkerError,
)
from functions.workers import cgroups, sandbox
from functions.workers.protocol import ProtocolError, Writer, read_message

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
# Only what a Python process needs: never the server's secrets, database or keys.
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME")
KILL_GRACE_SECONDS = 1.0
TAIL_BYTES = 16 * 1024


@dataclass
class Limits:
    memory_mb: int = 2048
    open_files: int = 256
    # Processes a worker may run at once, itself included (a pids cgroup, else RLIMIT_NPROC).
    processes: int = 64
    # CPU seconds over a worker's life (it is recycled before reaching them); 0: no limit.
    cpu_seconds: int = 0
    # Resident memory past which a worker is recycled after its calls; 0: never.
    recycle_mb: int = 0

    def apply(self, group: Path | None = None, become: Callable[[], None] | None = None) -> None:
        """Run in the child before exec: its own process group, its limits, and death
        with its parent (a killed server must not leave workers behind). `become` drops
        to the sandbox's uid (functions.workers.sandbox)."""
        os.setsid()
        # The cgroup first: joining it opens a file, and until exec this child still
        # holds every descriptor of the server, which may be more than the limit below.
        # It also needs root, which `become` gives up.
        if group is not None:
            cgroups.enter(group)
        elif self.processes:
            # Per uid, and ignored for root: the cgroup is the real cap there. Every
            # worker of a root server shares the sandbox uid, so the uid gets a budget
            # for many workers (threads count too); without a cgroup it is a coarse cap.
            count = self.processes * (64 if become is not None else 1)
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NPROC, (count, count))
        if become is not None:
            become()
        # After any uid change: a change of credentials clears the parent-death signal.
        _die_with_parent()
        if self.memory_mb:
            size = self.memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))
        if self.cpu_seconds:
            # SIGXCPU at the soft limit, SIGKILL a little later if it is ignored.
            resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))

    @classmethod
    def from_settings(cls) -> "Limits":
        from django.conf import settings

        return cls(
            memory_mb=settings.FUNCTIONS_WORKER_MEMORY_MB,
            open_files=settings.FUNCTIONS_WORKER_OPEN_FILES,
            processes=settings.FUNCTIONS_WORKER_PROCESSES,
            cpu_seconds=settings.FUNCTIONS_WORKER_CPU_SECONDS,
            recycle_mb=settings.FUNCTIONS_WORKER_RECYCLE_MB,
        )

    def describe(self, kind: str, message: str = "") -> str | None:
        """The limit a plugin exception of this type means it hit, in words, if any."""
        if kind == "MemoryError" and self.memory_mb:
            return f"the worker memory limit of {self.memory_mb} MB"
        if kind == "BlockingIOError" and self.processes:
            return f"the limit of {self.processes} processes per worker"
        if kind == "OSError" and "Too many open files" in message:
            return f"the limit of {self.open_files} open files per worker"
        return None


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGKILL to this process when its parent exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the worker still exits when its socket closes


def worker_env() -> dict[str, str]:
    env = {key: os.environ[key] for key in SAFE_ENV if key in os.environ}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env["FNPLATFORM_WORKER"] = "1"
    env["DJANGO_SETTINGS_MODULE"] = "fnplatform.worker_settings"
    # FNPLATFORM_DATA_DIR, HOME and TMPDIR: the process's own scratch dir (sandbox.Box.env).
    return env


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
        self.known_sources: set[str] = set()
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

    def fail_all(self, reason: str) -> None:
        for call_id, inbox in self.calls.items():
            collateral = self.culprit is not None and call_id != self.culprit
            inbox.put_final({"op": "crashed", "message": reason, "collateral": collateral})

    async def answer_host(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run a worker's host-data request for the call whose token it carries."""
        handler = self.host_handlers.get(str(request.get("call") or ""))
        if handler is None:
            return {"ok": False, "error": "refused: not the token of a call in progress here"}
        try:
            value = await handler(request["name"], request["args"], request["kwargs"])
            return {"ok": True, "value": value}
        except Exception as exc:  # the plugin sees it as a HostError with this text
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    async def call(
        self,
        request: dict[str, Any],
        *,
        on_event: EventCallback,
        on_event_call: EventCallback,
        timeout: float | None,
        first_timeout: float | None = None,
        on_host: HostCallback | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Run one call; yield its chunk batches; return at its result, raise on failure."""
        call_id = request["id"]
        inbox = CallInbox()
        self.calls[call_id] = inbox
        token = secrets.token_urlsafe(24)
        if on_host is not None:
            self.host_handlers[token] = on_host
        self.served += 1
        finished = False
        try:
            await self._send_call({**request, "token": token})
            budgets = (timeout, first_timeout)
            async for message in self._messages(inbox, call_id, budgets, request):
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
            self.host_handlers.pop(token, None)
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
        await self.send(message)
        self.known_sources.add(request["sha256"])

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


class WorkerProcess(WorkerConnection):
    """One sandboxed worker process, over a socketpair (calls) and a second one (host
    data the plugin asks for)."""

    def __init__(
        self,
        source_dir: str,
        limits: Limits | None = None,
        *,
        python: str = sys.executable,
    ) -> None:
        super().__init__()
        self.source_dir = source_dir
        self.limits = limits or Limits()
        self.python = python  # a requirements environment's interpreter, or ours
        self.process: asyncio.subprocess.Process | None = None
        self.group: Path | None = None  # its pids cgroup, where there is one
        self.box: sandbox.Box | None = None  # its sandbox and scratch dir
        self.payload: int | None = None  # the interpreter's pid, when bubblewrap is its parent
        self.output_tail = b""
        self._writer: Writer | None = None

    async def start(self) -> "WorkerProcess":
        """Start the process and wait for it to say it is ready. On any failure nothing
        is left behind: no process, socket, scratch dir or cgroup."""
        sockets = [*socket.socketpair(), *socket.socketpair()]  # calls, then host data
        try:
            reader, host_reader, host_writer = await self._spawn_process(sockets)
            ready = await asyncio.wait_for(read_message(reader), timeout=30)
        except BaseException as exc:
            await self._abandon(sockets)
            if isinstance(exc, TimeoutError | ProtocolError):
                raise WorkerCrashed(f"worker failed to start: {self.tail()}") from None
            raise
        if not ready or ready.get("op") != "ready":
            await self._abandon(sockets)
            raise WorkerCrashed(f"worker failed to start: {self.tail()}")
        box = self.box
        assert box is not None and self.process is not None
        self.payload = sandbox.payload_pid(self.process.pid, box.sandboxed)
        self._spawn(self._read(reader))
        self._spawn(self._serve_host(host_reader, Writer(host_writer)))
        return self

    async def _spawn_process(self, sockets: list[socket.socket]):
        parent, child, host_parent, host_child = sockets
        fds = [child.fileno(), host_child.fileno()]
        # Sources go to the worker's own scratch dir, not self.source_dir (the data dir's).
        self.box = box = sandbox.prepare(python=self.python)
        self.group = cgroups.create(self.limits.processes)
        argv = [self.python, "-m", "functions.workers.worker"]
        self.process = await asyncio.create_subprocess_exec(
            *box.command([*argv, str(fds[0]), box.source_dir, str(fds[1])]),
            pass_fds=fds,
            env=box.env(worker_env()),
            cwd=box.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=box.preexec(self.limits, self.group),
        )
        child.close()
        host_child.close()
        reader, writer = await asyncio.open_connection(sock=parent, limit=2**20)
        host_reader, host_writer = await asyncio.open_connection(sock=host_parent, limit=2**20)
        self._writer = Writer(writer)
        self._spawn(self._drain_output())
        return reader, host_reader, host_writer

    async def _abandon(self, sockets: list[socket.socket]) -> None:
        """Undo a start that failed part way."""
        for sock in sockets:
            sock.close()
        if self._writer is not None:
            self._writer.close()
        await self.stop()

    @property
    def pid(self) -> int | None:
        """The worker interpreter's pid (inside a sandbox, bubblewrap's grandchild)."""
        return self.payload or (self.process.pid if self.process else None)

    def tail(self) -> str:
        """The last lines the worker printed (for error messages and diagnostics)."""
        return self.output_tail.decode(errors="replace")

    async def send(self, message: dict[str, Any]) -> None:
        if self._writer is None:
            raise WorkerCrashed("the worker process is not running")
        await self._writer.send(message)

    async def _drain_output(self) -> None:
        """Keep the end of what a plugin printed; drop the rest (it may print gigabytes)."""
        assert self.process and self.process.stdout
        while chunk := await self.process.stdout.read(1 << 16):
            self.output_tail = (self.output_tail + chunk)[-TAIL_BYTES:]

    async def _read(self, reader: asyncio.StreamReader) -> None:
        reason = None
        try:
            while (message := await read_message(reader)) is not None:
                await self.deliver(message)
        except ProtocolError as exc:
            # The worker side refuses oversized frames itself; this one broke the protocol.
            log.warning("Worker %s sent a bad frame and is stopped: %s", self.pid, exc)
            reason = f"sent a message the server cannot read ({exc})"
        finally:
            await self._died(reason)

    async def _died(self, reason: str | None = None) -> None:
        self.dead = True
        code = None
        if self.process is not None:
            if reason is None:  # its socket closed: it is exiting, give it a moment
                with contextlib.suppress(TimeoutError):
                    code = await asyncio.wait_for(self.process.wait(), KILL_GRACE_SECONDS * 2)
            self.kill()  # what it started goes with it
            code = await self.process.wait() if code is None else code
            code = self.box.returncode(code) if self.box else code
        self.fail_all(f"the worker process {reason or exit_reason(code, self.limits)}")

    async def _serve_host(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        """Answer a worker's host-data requests, each for the call whose token it names."""
        with contextlib.suppress(ProtocolError, ConnectionError):
            while (request := await read_message(reader)) is not None:
                await writer.send(await self.answer_host(request))

    def kill(self) -> None:
        """Kill the worker and everything it started (its process group and cgroup)."""
        if self.process and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        for pid in cgroups.members(self.group) if self.group else ():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.dead = True

    def _at_process_limit(self) -> bool:
        return cgroups.at_limit(self.group)

    def worn_out(self, max_calls: int) -> bool:
        """Whether to replace this worker once its calls are done: it served enough calls,
        grew past the recycling size, or used most of its CPU time."""
        if super().worn_out(max_calls):
            return True
        usage = process_usage(self.pid)
        if usage is None:
            return False
        rss_mb, cpu_seconds = usage
        limits = self.limits
        return bool(limits.recycle_mb and rss_mb > limits.recycle_mb) or bool(
            limits.cpu_seconds and cpu_seconds > 0.8 * limits.cpu_seconds
        )

    async def stop(self) -> None:
        await super().stop()
        if self.process:
            await self.process.wait()
        if self.box is not None:
            self.box.close()
        if self.group is not None:
            await asyncio.to_thread(cgroups.kill_and_remove, self.group)
            self.group = None


def process_usage(pid: int | None) -> tuple[float, float] | None:
    """Resident memory (MB) and CPU time used (s) of a live process, from /proc."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rss = [line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")]
    rss_kb = int(rss[0]) if rss else 0
    fields = stat.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return rss_kb / 1024, cpu


def exit_reason(code: int | None, limits: Limits | None = None) -> str:
    if code is None:
        return "stopped"
    if code == -signal.SIGXCPU and limits is not None and limits.cpu_seconds:
        return f"exceeded its CPU time limit of {limits.cpu_seconds} s"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"was killed by {name}"
    return f"exited with status {code}"


class WorkerPool:
    """The workers of one function (or one trust group): N of them, started on demand,
    a dead or worn-out one replaced before the next call, all stopped when idle."""

    def __init__(
        self,
        size: int,
        source_dir: str,
        *,
        limits: Limits | None = None,
        max_calls: int = 1000,
        python: str = sys.executable,
        name: str = "",
        factory: Callable[[], Awaitable[WorkerConnection]] | None = None,
    ) -> None:
        self.size, self.source_dir, self.max_calls = size, source_dir, max_calls
        self.python, self.name = python, name
        self.limits = limits or Limits()
        self.workers: list[WorkerConnection] = []
        self._factory = factory or self._start_process
        self._ids = itertools.count()
        self._lock = asyncio.Lock()
        self.last_used = time.monotonic()
        self.active = 0  # calls (and warm-ups) in progress, their workers starting or not
        self.closed = False

    async def _start_process(self) -> WorkerConnection:
        return await WorkerProcess(self.source_dir, self.limits, python=self.python).start()

    @property
    def busy(self) -> bool:
        return self.active > 0 or any(w.calls for w in self.workers)

    async def _healthy(self) -> list[WorkerConnection]:
        """The workers new calls may go to: never a dead or worn-out one (a worn-out
        worker finishes its calls and is stopped once they are done)."""
        async with self._lock:
            if self.closed:
                raise WorkerCrashed("the function's workers were stopped; try again")
            for worker in [w for w in self.workers if w.worn_out(self.max_calls)]:
                if not worker.calls:
                    self.workers.remove(worker)
                    await worker.stop()
            fresh = [w for w in self.workers if not w.worn_out(self.max_calls)]
            while len(fresh) < self.size:
                worker = await self._factory()
                self.workers.append(worker)
                fresh.append(worker)
            return fresh

    async def start(self) -> None:
        """Start the workers now rather than at the first call."""
        self.active += 1
        try:
            await self._healthy()
        finally:
            self.active -= 1

    async def call(self, request: dict[str, Any], **options: Any) -> AsyncIterator[dict]:
        self.last_used = time.monotonic()
        self.active += 1  # busy from now: the reaper leaves a pool whose worker is starting
        try:
            workers = await self._healthy()
            worker = min(workers, key=lambda w: len(w.calls))
            request = {**request, "id": f"c{next(self._ids)}"}
            async for message in worker.call(request, **options):
                yield message
        finally:
            self.active -= 1
            self.last_used = time.monotonic()

    async def stop(self) -> None:
        self.closed = True
        for worker in self.workers:
            await worker.stop()
        self.workers.clear()
