"""The plugin contract at run time: how hooks are called and what they may return.

Classes and hooks (the loader picks the class in this order):
- `Pipe.pipe(body, …)` answers a chat; a manifold also has `pipes` (a list, or a
  sync or async method returning [{"id", "name"}]).
- `Filter.inlet(body, …) -> body`, `Filter.stream(event, …) -> event | None`,
  `Filter.outlet(body, …) -> body`, each optional, run in (Valves.priority, id) order.
- `Action.action(body, …)` runs when a message button is clicked.
Every hook may be sync or async. Hooks run in the function's own worker (the
executor seam, functions.services.executor), never in the server; sync hooks (and
sync generators, one item at a time) run in the worker's threads, never on its
event loop thread (module code and `__init__` run there, as in Open WebUI).

Arguments: the data argument by name (`body`, or `event` for stream; passed
positionally when the hook names it differently), plus the reserved names the
signature declares, or all of them when it takes **kwargs (functions.services.context).

Valves: the server sends each call its stored valves and the user's user valves as
data; the worker validates them with the plugin's own classes and runs the hook on
a shallow copy of its cached instance carrying those valves, so concurrent calls
with different valves never race on one shared object. Attributes a hook assigns
on `self` therefore last for that call only; mutable objects created in `__init__`
are shared, as upstream. `__user__["valves"]` holds only this plugin's UserValves.

What a pipe may return, all normalised into one stream of Chunk objects:
str; dict (a full completion or a chunk); a pydantic model; a sync or async
generator or iterator of str, bytes, dict, pydantic models or ready-made SSE
lines (`data: {...}`); an object with a `body_iterator` (StreamingResponse), passed
on as it streams (SSE parsed, other text as is); a whole-body Response (JSON as data,
else text); a list of str; None (the answer went out as events).

Plugins get their data as arguments and never use the ORM: callers prepare
PluginCall objects (plain data: the load report, valves as dicts) beforehand,
outside the event loop's hot path.
"""

import inspect
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from functions.services.context import CallContext
from functions.services.executor import get_executor
from functions.services.loader import LoadReport
from functions.services.signatures import accepted_names

log = logging.getLogger(__name__)


class HookError(Exception):
    """A plugin hook raised; carries the function id and hook name."""

    def __init__(self, function_id: str, hook: str, error: BaseException) -> None:
        self.function_id, self.hook, self.error = function_id, hook, error
        super().__init__(f"{function_id}.{hook}: {error}")

    @property
    def message(self) -> str:
        return str(self.error) or type(self.error).__name__

    @property
    def described(self) -> str:
        """The message for a user, naming the function once ("Function x failed: ...")."""
        if self.message.startswith(f"Function {self.function_id} "):
            return self.message  # the executor's own messages name it already
        return f"Function {self.function_id} failed: {self.message}"


class FilterAbort(HookError):
    """An inlet filter refused the request; its message is for the user."""


@dataclass
class PluginCall:
    """One plugin prepared for one call, as data: what its worker needs to run it."""

    function_id: str
    report: LoadReport
    source: str
    sha256: str
    name: str = ""
    valves: dict[str, Any] | None = None  # explicit stored values, secrets revealed
    user_valves: dict[str, Any] | None = None  # this user's, for this function only
    priority: int = 0
    environment: str | None = None  # the key of its requirement environment, if any
    timeout: float | None = None  # its own call deadline, if staff set one
    group: str = ""  # its workers: its own (the function id) or a trust group's

    def __post_init__(self) -> None:
        self.name = self.name or self.function_id
        self.group = self.group or f"function:{self.function_id}"

    def has_hook(self, hook: str) -> bool:
        return hook in self.report.hooks


def order_filters(filters: list[PluginCall]) -> list[PluginCall]:
    """Sort filters by (Valves.priority, id), as Open WebUI does for every hook."""
    return sorted(filters, key=lambda f: (f.priority, f.function_id))


def _arguments(func: Any, data_name: str, data: Any, extra: dict[str, Any]) -> tuple[tuple, dict]:
    names, takes_kwargs = accepted_names(func)
    if data_name in names or takes_kwargs:
        return (), {data_name: data, **extra}
    return (data,), extra


async def call_hook(
    call: PluginCall,
    hook: str,
    data: Any,
    context: CallContext,
    *,
    data_name: str = "body",
    id: str | None = None,
    executor: Any = None,
) -> Any:
    """Call one hook of a plugin in its worker, with its data and reserved arguments.
    `executor` defaults to the configured one (tests pass their own)."""
    executor = executor or get_executor()
    return await executor.invoke(call, hook, data, context, data_name=data_name, id=id)


# Pipe output normalisation


@dataclass
class Chunk:
    """One piece of a pipe's answer: text, or an OpenAI-shaped dict passed through."""

    text: str = ""
    data: dict[str, Any] | None = None
    done: bool = False


@dataclass
class _SSEBuffer:
    """Reassemble SSE lines from arbitrarily split bytes or text."""

    pending: str = ""
    lines: list[str] = field(default_factory=list)

    def feed(self, piece: str) -> list[str]:
        self.pending += piece
        *complete, self.pending = self.pending.split("\n")
        return [line.rstrip("\r") for line in complete]


def _from_sse_line(line: str) -> list[Chunk]:
    payload = line[5:].strip()
    if not payload:
        return []
    if payload == "[DONE]":
        return [Chunk(done=True)]
    try:
        parsed = json.loads(payload)
    except json.JSONDecodeError:
        return [Chunk(text=payload)]
    return _from_value(parsed)


def _from_value(item: Any) -> list[Chunk]:
    """Turn one returned or yielded value into chunks."""
    if item is None:
        return []
    if isinstance(item, bytes):
        item = item.decode("utf-8", errors="replace")
    if isinstance(item, BaseModel):
        item = item.model_dump()
    if isinstance(item, dict):
        return [Chunk(data=item)]
    if isinstance(item, str):
        if item.lstrip().startswith("data:"):
            return [
                c
                for line in item.splitlines()
                if line.startswith("data:")
                for c in _from_sse_line(line)
            ]
        return [Chunk(text=item)] if item else []
    if isinstance(item, list | tuple):
        return [c for part in item for c in _from_value(part)]
    return [Chunk(text=str(item))]


async def stream_pipe(result: Any, *, executor: Any) -> AsyncIterator[Chunk]:
    """Yield Chunks for whatever a pipe returned (in its worker), stepping sync iterators
    through `executor.iterate` off the loop."""
    if hasattr(result, "body_iterator"):
        sse = _is_sse(getattr(result, "media_type", None))
        async for chunk in _stream_body(result.body_iterator, executor, sse):
            yield chunk
        return
    result = response_value(result)
    if isinstance(result, dict) and set(result) == {"__html__"}:
        result = result["__html__"]  # a pipe's answer is text; HTML shows as written
    if hasattr(result, "__aiter__"):
        async for item in result:
            for chunk in _from_value(item):
                yield chunk
        return
    if _is_iterator(result):
        async for item in executor.iterate(iter(result)):
            for chunk in _from_value(item):
                yield chunk
        return
    for chunk in _from_value(result):
        yield chunk


def _is_iterator(value: Any) -> bool:
    return inspect.isgenerator(value) or (hasattr(value, "__next__") and hasattr(value, "__iter__"))


def _is_sse(media_type: str | None) -> bool | None:
    """SSE, plain text, or (no media type) to be told by the body's first bytes."""
    if not media_type:
        return None
    return "event-stream" in media_type


async def _stream_body(body: Any, executor: Any, sse: bool | None) -> AsyncIterator[Chunk]:
    """Pass a StreamingResponse body on as it comes: SSE (bytes or str, split anywhere)
    is parsed line by line; any other text goes out piece by piece."""
    buffer = _SSEBuffer()
    pieces = body if hasattr(body, "__aiter__") else executor.iterate(iter(body))
    async for piece in pieces:
        text = piece.decode("utf-8", errors="replace") if isinstance(piece, bytes) else str(piece)
        if sse is None and text.strip():
            sse = text.lstrip().startswith(("data:", "event:", ":"))
        if not sse:
            if text:
                yield Chunk(text=text)
            continue
        for line in buffer.feed(text):
            if line.startswith("data:"):
                for chunk in _from_sse_line(line):
                    yield chunk
    if buffer.pending.startswith("data:"):
        for chunk in _from_sse_line(buffer.pending):
            yield chunk


async def run_pipe(
    call: PluginCall, body: dict, context: CallContext, *, executor: Any = None
) -> AsyncIterator[Chunk]:
    """Call a pipe in its worker and yield its answer as chunks; raise HookError naming
    the function."""
    executor = executor or get_executor()
    try:
        async for chunk in executor.stream(call, "pipe", body, context):
            yield chunk
    except HookError:
        raise
    except Exception as exc:
        log.warning("Pipe %s failed: %s", call.function_id, exc)
        raise HookError(call.function_id, "pipe", exc) from exc


# Rich results


def response_value(result: Any) -> Any:
    """A whole-body fastapi/starlette Response (HTMLResponse, JSONResponse,
    PlainTextResponse, Response) as the value it stands for: HTML as the
    {"__html__": ...} marker, JSON as data, anything else as text. Other values are
    returned as they are. Read by duck type: the server never imports fastapi."""
    body = getattr(result, "body", None)
    if not (isinstance(body, bytes) and hasattr(result, "status_code")):
        return result
    media = getattr(result, "media_type", None) or ""
    text = body.decode("utf-8", errors="replace")
    if "html" in media:
        return {"__html__": text}
    if "json" in media:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def html_of(result: Any) -> str | None:
    """The HTML a hook returned: an HTMLResponse-like object, an (html, headers) or
    (response, context) tuple, or a worker's {"__html__": ...} marker; else None."""
    if isinstance(result, dict) and set(result) == {"__html__"}:
        return str(result["__html__"])
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict):
        result = result[0]
        if isinstance(result, str):
            return result
    media = getattr(result, "media_type", None) or ""
    body = getattr(result, "body", None)
    if "html" in media and isinstance(body, bytes | str):
        return body.decode() if isinstance(body, bytes) else body
    return None


# Filters


async def apply_inlet(
    filters: list[PluginCall], body: dict, context: CallContext, **options: Any
) -> dict:
    """Fold inlet hooks over the body; a raising inlet aborts with FilterAbort."""
    for call in order_filters(filters):
        if not call.has_hook("inlet"):
            continue
        try:
            result = await call_hook(call, "inlet", body, context, **options)
        except Exception as exc:
            raise FilterAbort(call.function_id, "inlet", exc) from exc
        body = result if isinstance(result, dict) else body
    return body


async def _report(call: PluginCall, hook: str, exc: Exception, context: CallContext) -> None:
    log.error("Filter %s failed in %s: %s", call.function_id, hook, exc, exc_info=exc)
    if context.event_emitter is not None:
        message = f"Filter {call.name} failed in {hook}: {exc}"
        await context.event_emitter(
            {"type": "notification", "data": {"type": "warning", "content": message}}
        )


async def apply_stream(
    filters: list[PluginCall], event: dict, context: CallContext, **options: Any
) -> dict | None:
    """Pass one chunk through stream hooks; a falsy return drops it, a failure is reported."""
    for call in order_filters(filters):
        if not call.has_hook("stream"):
            continue
        try:
            result = await call_hook(call, "stream", event, context, data_name="event", **options)
        except Exception as exc:
            await _report(call, "stream", exc, context)
            continue
        if not result:
            return None
        event = result
    return event


async def apply_outlet(
    filters: list[PluginCall], body: dict, context: CallContext, **options: Any
) -> dict:
    """Fold outlet hooks over the finished message; failures are reported, not swallowed."""
    for call in order_filters(filters):
        if not call.has_hook("outlet"):
            continue
        try:
            result = await call_hook(call, "outlet", body, context, **options)
        except Exception as exc:
            await _report(call, "outlet", exc, context)
            continue
        body = result if isinstance(result, dict) else body
    return body


async def run_action(
    call: PluginCall,
    body: dict,
    context: CallContext,
    *,
    sub_id: str | None = None,
    executor: Any = None,
) -> Any:
    """Call an action (or one of its sub-actions, as __id__); raise HookError on failure."""
    try:
        return await call_hook(
            call, "action", body, context, id=sub_id or call.function_id, executor=executor
        )
    except Exception as exc:
        log.warning("Action %s failed: %s", call.function_id, exc)
        raise HookError(call.function_id, "action", exc) from exc
