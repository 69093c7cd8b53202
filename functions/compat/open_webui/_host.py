"""Host data for plugins that run in worker processes.

The compatibility layer's host-data methods (Users, Chats, Files, Storage,
generate_chat_completion, …) are marked `hosted`. In the server they run as
written. In a worker (FNPLATFORM_WORKER=1) they are not run locally: the call
goes over the worker's host channel to the server, which runs the same method
for the plugin call in progress, scoped to that call's user, and sends the
result back. Pydantic models, bytes and file-like arguments travel as data.

While a plugin's module loads (import and `__init__`) the worker uses the load
token the server gave for that load instead: the server answers it read-only, for
the staff member who saved the code (functions.services.host.loading), and the
worker gives the token back as soon as the module is loaded.
"""

import asyncio
import contextlib
import contextvars
import functools
import importlib
import inspect
import io
import os
import socket
import threading
from typing import Any

import msgpack

from functions.services import host
from functions.workers.protocol import HEADER

IN_WORKER = os.environ.get("FNPLATFORM_WORKER") == "1"
current_call: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fnplatform_worker_call", default=None
)
HOSTED: dict[str, Any] = {}


class HostError(Exception):
    """The server refused or failed a host-data request; the message says why."""


def hosted_name(func: Any) -> str:
    return f"{func.__module__}:{func.__qualname__}"


@functools.cache
def plugin_name(func: Any) -> str:
    """The name plugin code knows a host method by: open_webui.models.users.Users.get_users."""
    module_name = func.__module__.removeprefix("functions.compat.")
    owner, _, method = func.__qualname__.rpartition(".")
    if owner:
        module = importlib.import_module(func.__module__)
        instance = next(
            (n for n, v in vars(module).items() if type(v).__qualname__ == owner), owner
        )
        return f"{module_name}.{instance}.{method}"
    return f"{module_name}.{method}"


def hosted(func):
    """Register a host-data function; in a worker, replace it with a call to the server."""
    name = hosted_name(func)
    HOSTED[name] = func
    if not IN_WORKER:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def checked_async(*args, **kwargs):
                host.check_allowed(plugin_name(func))
                return await func(*args, **kwargs)

            return checked_async

        @functools.wraps(func)
        def checked(*args, **kwargs):
            host.check_allowed(plugin_name(func))  # read-only while a module loads
            return func(*args, **kwargs)

        return checked
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def remote_async(*args, **kwargs):
            return await asyncio.to_thread(_channel().request, name, args, kwargs)

        return remote_async

    @functools.wraps(func)
    def remote(*args, **kwargs):
        if "." in func.__qualname__:
            args = args[1:]  # the table instance stays here; the server has its own
        return _channel().request(name, args, kwargs)

    return remote


# Wire encoding of arguments and results


def encode(value: Any) -> Any:
    if getattr(value, "__fnplatform_request__", False):
        return {"__request__": True}  # the server uses its own copy of the call's request
    if hasattr(value, "model_dump") and hasattr(type(value), "model_fields"):
        cls = type(value)
        return {
            "__model__": f"{cls.__module__}:{cls.__qualname__}",
            "data": value.model_dump(mode="json"),
        }
    if hasattr(value, "read") and callable(value.read):
        return {"__file__": value.read(), "name": getattr(value, "name", None)}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, bytes | str | int | float | bool) or value is None:
        return value
    return str(value)


class ReceivedStream:
    """A streamed completion the server ran for a worker, replayed as it was sent."""

    media_type = "text/event-stream"

    def __init__(self, lines: list[bytes]) -> None:
        self.status_code = 200
        self.headers = {"content-type": self.media_type}
        self.body_iterator = self._iterate(lines)

    @staticmethod
    async def _iterate(lines: list[bytes]):
        for line in lines:
            yield line


async def collect_stream(value: Any) -> Any:
    """On the server: a streaming result becomes data a worker can replay."""
    if hasattr(value, "body_iterator"):
        return {"__sse__": [line async for line in value.body_iterator]}
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict) and "__sse__" in value:
        return ReceivedStream(value["__sse__"])
    if isinstance(value, dict):
        if value.get("__request__") is True and len(value) == 1:
            return host.calling_request()
        if "__model__" in value and "data" in value:
            return _resolve(value["__model__"]).model_validate(value["data"])
        if "__file__" in value:
            stream = io.BytesIO(value["__file__"])
            stream.name = value.get("name") or "upload"
            return stream
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def _resolve(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    if not module_name.startswith(("open_webui.", "functions.compat.")):
        raise HostError(f"{path} is not part of the compatibility layer")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


# The worker's end of the host channel


class _Channel:
    """A blocking request/reply socket, shared by the worker's threads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def request(self, name: str, args: tuple, kwargs: dict) -> Any:
        call_id = current_call.get()
        if call_id is None:
            raise HostError(f"{name} can only be used while the plugin is answering a call")
        return self._exchange(
            {"call": call_id, "name": name, "args": encode(list(args)), "kwargs": encode(kwargs)}
        )

    def release(self, token: str) -> None:
        """Give a load token back: the server refuses it from now on."""
        self._exchange({"call": token, "release": True}, name="releasing the load token")

    def _exchange(self, request: dict, name: str | None = None) -> Any:
        name = name or request["name"]
        payload = msgpack.packb(request, use_bin_type=True)
        with self.lock:
            self.sock.sendall(HEADER.pack(len(payload)) + payload)
            (size,) = HEADER.unpack(_read_exactly(self.sock, HEADER.size))
            reply = msgpack.unpackb(_read_exactly(self.sock, size), raw=False)
        if not reply.get("ok"):
            raise HostError(reply.get("error") or f"{name} failed on the server")
        return decode(reply.get("value"))


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            raise HostError("the server closed the host channel")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


_channel_instance: _Channel | None = None


def connect(fd: int) -> None:
    """Called once by the worker at start with its host channel's file descriptor."""
    global _channel_instance
    _channel_instance = _Channel(socket.socket(fileno=fd))


def _channel() -> _Channel:
    if _channel_instance is None:
        raise HostError("this worker has no host channel")
    return _channel_instance


@contextlib.contextmanager
def loading(token: str | None):
    """Load a plugin's module: host data is read-only, for the saver of its code.

    In a worker process, requests carry the load token the server gave (and it is
    given back at the end); elsewhere (inline tests) the scope is set here."""
    if not IN_WORKER:
        with host.loading():
            yield
        return
    # Never the call's own token: a module loads with its saver's read-only scope or
    # none, whoever's call made it load.
    reset = current_call.set(token)
    try:
        yield
    finally:
        current_call.reset(reset)
        if token is not None:
            with contextlib.suppress(HostError, OSError):
                _channel().release(token)


# The server's end


def run_hosted(name: str, args: list, kwargs: dict) -> Any:
    """Run a registered host method for a worker (sync; the caller scope is already set)."""
    func = HOSTED.get(name)
    if func is None:
        _resolve(name)  # importing the module registers its hosted functions
        func = HOSTED.get(name)
    if func is None:
        raise HostError(f"{name} is not a host-data method")
    host.check_allowed(plugin_name(func))  # read-only while the plugin's module loads
    args, kwargs = decode(args), decode(kwargs)
    if "." in func.__qualname__:
        owner = _resolve(name.rsplit(".", 1)[0])
        args = [owner(), *args]
    return func(*args, **kwargs)
