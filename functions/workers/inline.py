"""A worker in the test process itself: for unit tests only, never the server.

It runs the worker's own code (functions.workers.worker.Worker) on the caller's
event loop, with every message round-tripped through the wire encoding, so tests
see what a worker process would answer, without starting processes. It cannot
kill a hook that will not let go; the process executor can, and is the only one
the server uses.
"""

from typing import Any

import msgpack

from functions.selectors import code_saver
from functions.services.host import set_caller, set_load_scope
from functions.workers.connection import WorkerConnection
from functions.workers.limits import Limits
from functions.workers.protocol import HEADER, encode


def over_the_wire(message: dict[str, Any]) -> dict[str, Any]:
    """What the other side of the socket would read."""
    return msgpack.unpackb(encode(message)[HEADER.size :], raw=False)


def frame_of(message: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """What the other side would read, and the size of the frame it came in."""
    payload = encode(message)[HEADER.size :]
    return msgpack.unpackb(payload, raw=False), len(payload)


class _Outbox:
    """The worker's writer: its messages go straight to the connection's inboxes."""

    def __init__(self, connection: "InlineWorker") -> None:
        self.connection = connection

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.deliver(*frame_of(message))


class InlineWorker(WorkerConnection):
    def __init__(self, source_dir: str, limits: Limits | None = None) -> None:
        from functions.workers.worker import Worker

        super().__init__()
        self.limits = limits or Limits()
        self.worker = Worker(_Outbox(self), source_dir)

    async def send(self, message: dict[str, Any]) -> None:
        if message.get("op") in ("call", "valves"):
            # Host-data shims run here as written, scoped to this call's user.
            context = message.get("context") or {}
            user = context.get("user") or message.get("user") or {}
            request = context.get("request") or {}
            if len(request) == 1:  # by ref: the worker holds it from an earlier call
                request = self.worker.requests.get(request["ref"])
            function_id, sha = message.get("function_id"), message.get("sha256")
            set_caller(user, function_id, request or None)
            # Its module loads for the saver of its code, read-only, as in a process.
            set_load_scope(lambda: code_saver(function_id, sha), function_id)
        self.worker.dispatch(over_the_wire(message))

    def kill(self) -> None:
        for task in list(self.worker.tasks.values()):
            task.cancel()
        if not self.dead:
            self.dead = True
            self.fail_all("the worker was stopped")
