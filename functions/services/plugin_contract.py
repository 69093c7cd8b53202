"""The plugin contract both sides of the executor seam share.

How a hook is handed its data, and what a pipe's (or any hook's) answer is
normalised to. The worker runs these on what plugin code returns; the server reads
the results (Chunk, the {"__html__": ...} marker). Pure: no ORM, no executor, no
processes.

What a pipe may return, all normalised into one stream of Chunk objects:
str; dict (a full completion or a chunk); a pydantic model; a sync or async
generator or iterator of str, bytes, dict, pydantic models or ready-made SSE
lines (`data: {...}`); an object with a `body_iterator` (StreamingResponse), passed
on as it streams (SSE parsed, other text as is); a whole-body Response (JSON as data,
else text); a list of str; None (the answer went out as events).
"""

import inspect
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from functions.services.signatures import accepted_names


def hook_arguments(
    func: Any,
    data_name: str,
    data: Any,
    extra: dict[str, Any],
    accepted: tuple[frozenset[str], bool] | None = None,
) -> tuple[tuple, dict]:
    """The call of a hook with its data and reserved arguments: the data by name when
    the hook declares that name (or takes **kwargs), else positionally. `accepted`: its
    accepted_names, when the caller has them already."""
    names, takes_kwargs = accepted or accepted_names(func)
    if data_name in names or takes_kwargs:
        return (), {data_name: data, **extra}
    return (data,), extra


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


def plain_chunks(result: Any) -> list[Chunk] | None:
    """The chunks of an answer that is no stream (text, a dict, a list, None...), all
    known at once; None for a stream (which stream_pipe steps through)."""
    if hasattr(result, "body_iterator"):
        return None
    result = response_value(result)
    if isinstance(result, dict) and set(result) == {"__html__"}:
        result = result["__html__"]
    if hasattr(result, "__aiter__") or _is_iterator(result):
        return None
    return _from_value(result)


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
