"""Supervised worker processes, from the server's side.

A WorkerProcess is one `functions.workers.worker` child: started with a
scrubbed environment and resource limits, in its own process group, talking
over a socketpair. A call yields the worker's messages (stream chunks, events)
until its result or error; `__event_call__` questions are answered through a
callback. A worker that dies fails only the calls it was running, with
WorkerCrashed; a call past its deadline is cancelled, and the worker is killed
if it does not let go. WorkerPool keeps N of them alive and spreads calls.
"""

import asyncio
import contextlib
import ctypes
import itertools
import os
import resource
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.workers import cgroups, sandbox
from functions.workers.protocol import Writer, read_message

ROOT = Path(__file__).resolve().parents[2]
# Only what a Python process needs: never the server's secrets, database or keys.
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME")
KILL_GRACE_SECONDS = 1.0
TAIL_BYTES = 16 * 1024


class WorkerError(Exception):
    """A call could not complete in a worker; the message says why, naming the function."""


class WorkerCrashed(WorkerError):
    pass


class CallTimeout(WorkerError):
    pass


class LimitExceeded(WorkerError):
    """The plugin hit one of its worker's resource limits; the message says which."""


class PluginFailed(WorkerError):
    """The plugin raised; carries its exception type and traceback."""

    def __init__(self, message: str, kind: str, trace: str) -> None:
        # str() is the plugin's own message: an inlet's text reaches the user as written.
        super().__init__(message or kind)
        self.kind, self.trace = kind, trace


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
        elif self.processes and become is None:
            # Per uid, and ignored for root: the cgroup is the real cap there. Not for a
            # process that becomes the sandbox uid: all of them share it, and the limit.
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))
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


@dataclass(eq=False)
class WorkerProcess:
    source_dir: str
    limits: Limits = field(default_factory=Limits)
    python: str = sys.executable  # a requirements environment's interpreter, or ours
    process: asyncio.subprocess.Process | None = None
    group: Path | None = None  # its pids cgroup, where there is one
    box: sandbox.Box | None = None  # its sandbox and scratch dir
    payload: int | None = None  # the interpreter's pid, when bubblewrap is its parent
    calls: dict[str, asyncio.Queue] = field(default_factory=dict)
    host_handlers: dict[str, HostCallback] = field(default_factory=dict)
    known_sources: set[str] = field(default_factory=set)
    output_tail: bytes = b""
    served: int = 0
    dead: bool = False
    retiring: bool = False  # finish the calls it has, then make way for a fresh worker
    _writer: Writer | None = None
    _tasks: list[asyncio.Task] = field(default_factory=list)

    async def start(self) -> "WorkerProcess":
        parent, child = socket.socketpair()
        host_parent, host_child = socket.socketpair()  # host data, requested by the worker
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
        ready = await asyncio.wait_for(read_message(reader), timeout=30)
        if not ready or ready.get("op") != "ready":
            raise WorkerCrashed(f"worker failed to start: {self.tail()}")
        self.payload = sandbox.payload_pid(self.process.pid, box.sandboxed)
        self._tasks = [
            asyncio.create_task(self._read(reader)),
            asyncio.create_task(self._drain_output()),
            asyncio.create_task(self._serve_host(host_reader, Writer(host_writer))),
        ]
        return self

    @property
    def pid(self) -> int | None:
        """The worker interpreter's pid (inside a sandbox, bubblewrap's grandchild)."""
        return self.payload or (self.process.pid if self.process else None)

    def tail(self) -> str:
        """The last lines the worker printed (for error messages and diagnostics)."""
        return self.output_tail.decode(errors="replace")

    async def _drain_output(self) -> None:
        """Keep the end of what a plugin printed; drop the rest (it may print gigabytes)."""
        assert self.process and self.process.stdout
        while chunk := await self.process.stdout.read(1 << 16):
            self.output_tail = (self.output_tail + chunk)[-TAIL_BYTES:]

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while (message := await read_message(reader)) is not None:
                queue = self.calls.get(message.get("id", ""))
                if queue is not None:
                    queue.put_nowait(message)
        finally:
            await self._died()

    async def _died(self) -> None:
        self.dead = True
        code = await self.process.wait() if self.process else None
        code = self.box.returncode(code) if self.box else code
        self.kill()  # what it started goes with it
        reason = exit_reason(code, self.limits)
        for queue in self.calls.values():
            queue.put_nowait({"op": "crashed", "message": f"the worker process {reason}"})

    async def _serve_host(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        """Answer a worker's host-data requests, each for the call that made it."""
        while (request := await read_message(reader)) is not None:
            handler = self.host_handlers.get(request.get("call", ""))
            if handler is None:
                await writer.send({"ok": False, "error": "no call in progress for this request"})
                continue
            try:
                value = await handler(request["name"], request["args"], request["kwargs"])
                await writer.send({"ok": True, "value": value})
            except Exception as exc:  # the plugin sees it as a HostError with this text
                await writer.send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})

    def kill(self) -> None:
        """Kill the worker and everything it started (its process group and cgroup)."""
        if self.process and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        for pid in cgroups.members(self.group) if self.group else ():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.dead = True

    def worn_out(self, max_calls: int) -> bool:
        """Whether to replace this worker once its calls are done: it served enough calls,
        grew past the recycling size, or used most of its CPU time."""
        if self.dead or self.retiring or self.served >= max_calls:
            return True
        usage = process_usage(self.pid)
        if usage is None:
            return False
        rss_mb, cpu_seconds = usage
        limits = self.limits
        return bool(limits.recycle_mb and rss_mb > limits.recycle_mb) or bool(
            limits.cpu_seconds and cpu_seconds > 0.8 * limits.cpu_seconds
        )

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
        queue: asyncio.Queue = asyncio.Queue()
        self.calls[call_id] = queue
        if on_host is not None:
            self.host_handlers[call_id] = on_host
        self.served += 1
        finished = False
        try:
            await self._send_call(request)
            budgets = (timeout, first_timeout)
            async for message in self._messages(queue, call_id, budgets, request):
                if message["op"] == "event":
                    await on_event(message["event"])
                elif message["op"] == "event_call":
                    # Answered on the side: the call keeps streaming while a user decides.
                    task = asyncio.create_task(self._answer(message, on_event_call))
                    self._tasks.append(task)
                    task.add_done_callback(self._tasks.remove)
                else:
                    finished = finished or message["op"] == "result"
                    yield message
        except WorkerError:
            finished = True  # the worker already ended the call (error, crash or timeout)
            raise
        finally:
            self.calls.pop(call_id, None)
            self.host_handlers.pop(call_id, None)
            if not finished and not self.dead and self._writer is not None:
                # The caller went away (disconnect, stop): stop the plugin too.
                with contextlib.suppress(Exception):
                    await self._writer.send({"op": "cancel", "id": call_id})

    async def _send_call(self, request: dict[str, Any]) -> None:
        if self.dead or self._writer is None:
            raise WorkerCrashed("the worker process is not running")
        message = dict(request)
        if request["sha256"] in self.known_sources:
            message.pop("source", None)
        await self._writer.send(message)
        self.known_sources.add(request["sha256"])

    async def _messages(self, queue, call_id, budgets, request) -> AsyncIterator[dict]:
        loop = asyncio.get_running_loop()
        timeout, first_timeout = budgets
        deadline = loop.time() + timeout if timeout else None
        first = loop.time() + first_timeout if first_timeout else None
        while True:
            limits = [d for d in (deadline, first) if d is not None]
            wait = max(0.0, min(limits) - loop.time()) if limits else None
            try:
                message = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
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
                    f"Function {request['function_id']} failed: {message['message']}"
                )
            if op == "error":
                raise self._failure(message, request["function_id"])
            yield message

    def _failure(self, message: dict, function_id: str) -> WorkerError:
        kind = message["type"]
        limit = self.limits.describe(kind, message["message"])
        if kind == "BlockingIOError" and not (
            cgroups.at_limit(self.group) or "fork" in message["traceback"]
        ):
            limit = None  # a non-blocking socket, say: the plugin's own business
        if limit is None:
            return PluginFailed(message["message"], kind, message["traceback"])
        self.retiring = True  # whatever it left behind (children, heap) goes with it
        return LimitExceeded(f"Function {function_id} hit {limit} ({kind}: {message['message']})")

    async def _expire(self, call_id: str, timeout: float, request: dict, *, first=False) -> None:
        """Cancel a call past its deadline; kill the worker if the call does not let go."""
        if self._writer is not None and not self.dead:
            await self._writer.send({"op": "cancel", "id": call_id})
            queue = self.calls[call_id]
            try:
                while (await asyncio.wait_for(queue.get(), KILL_GRACE_SECONDS))["op"] not in (
                    "error",
                    "result",
                    "crashed",
                ):
                    pass
            except TimeoutError:
                self.kill()
        what = "first-chunk time limit" if first else "time limit"
        raise CallTimeout(f"Function {request['function_id']} exceeded its {what} of {timeout:g} s")

    async def _answer(self, message: dict, on_event_call: EventCallback) -> None:
        value = await on_event_call(message["event"])
        if self._writer is not None and not self.dead:
            await self._writer.send({"op": "event_reply", "req": message["req"], "value": value})

    async def stop(self) -> None:
        self.kill()
        for task in self._tasks:
            task.cancel()
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
    """N supervised workers; a dead or worn-out worker is replaced before the next call."""

    def __init__(
        self,
        size: int,
        source_dir: str,
        *,
        limits: Limits | None = None,
        max_calls: int = 1000,
        python: str = sys.executable,
    ) -> None:
        self.size, self.source_dir, self.max_calls = size, source_dir, max_calls
        self.python = python
        self.limits = limits or Limits()
        self.workers: list[WorkerProcess] = []
        self._ids = itertools.count()
        self._lock = asyncio.Lock()

    async def _healthy(self) -> list[WorkerProcess]:
        async with self._lock:
            for worker in [w for w in self.workers if w.worn_out(self.max_calls)]:
                if not worker.calls:
                    self.workers.remove(worker)
                    await worker.stop()
            while len([w for w in self.workers if not w.dead]) < self.size:
                worker = WorkerProcess(self.source_dir, self.limits, python=self.python)
                self.workers.append(await worker.start())
            return [w for w in self.workers if not w.dead] or self.workers

    async def start(self) -> None:
        """Start the workers now rather than at the first call."""
        await self._healthy()

    async def call(self, request: dict[str, Any], **options: Any) -> AsyncIterator[dict]:
        workers = await self._healthy()
        worker = min(workers, key=lambda w: len(w.calls))
        request = {**request, "id": f"c{next(self._ids)}"}
        async for message in worker.call(request, **options):
            yield message

    async def stop(self) -> None:
        for worker in self.workers:
            await worker.stop()
        self.workers.clear()
