"""A sandboxed worker process: `functions.workers.worker` under bubblewrap, with its
limits, over a socketpair for calls and a second one for the host data it asks for.
A worker that dies fails only the calls it was running, with WorkerCrashed.
"""

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from functions.seam import WorkerCrashed
from functions.workers import cgroups, sandbox
from functions.workers.connection import WorkerConnection
from functions.workers.limits import (
    KILL_GRACE_SECONDS,
    TAIL_BYTES,
    Limits,
    exit_reason,
    process_usage,
    worker_env,
)
from functions.workers.protocol import ProtocolError, Writer, read_frame, read_message

log = logging.getLogger(__name__)


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
            while True:
                message, size = await read_frame(reader)
                if message is None:
                    break
                await self.deliver(message, size)
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
