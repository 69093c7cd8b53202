"""The wire between the server and a worker process: length-prefixed msgpack frames.

Messages are dicts with an "op" and, but for "ready" and "event_reply", the "id" of
their call.

Server -> worker:
- call: run a hook ("stream": a pipe's answer; "session": a stream-hook session),
  valves: validate valves or list their options;
- items / end: a session's next input batch (a list of events), and its end;
- cancel: stop a call; event_reply: the answer to an event_call.

Worker -> server:
- ready (once, at start); result: a call's value, its end;
- chunks: a batch of a pipe's stream items; the one marked "last" is also its end (an
  answer known at once is one frame);
- results: a session's answer to one input batch, in order: "items" (one value per
  event) and "failed" ([index, exception type, message] for each event whose hook
  raised; the session goes on);
- error: the call failed (its exception type, message, traceback);
- event / event_call: an event for the user, or a question whose event_reply the
  plugin waits for.

Small stream items are batched by the sender while a write is in flight, and the first
one is never held back.
"""

import asyncio
import struct
from typing import Any

import msgpack

HEADER = struct.Struct("!I")
MAX_FRAME = 64 * 1024 * 1024


# A call's `__request__` travels in full the first time, then as {"ref"}: the server
# assumes a worker still holds the last KNOWN_REQUESTS it sent; a worker keeps twice as
# many, so calls sent concurrently (whose order may swap) never name one it dropped.
KNOWN_REQUESTS = 64
KEPT_REQUESTS = 2 * KNOWN_REQUESTS


def remember_request(kept: dict, ref: str, data: Any = None, *, size: int = KNOWN_REQUESTS):
    """Add a request to a bounded first-in first-out record of them."""
    kept.setdefault(ref, data)
    while len(kept) > size:
        kept.pop(next(iter(kept)))


class ProtocolError(Exception):
    """A frame that is too large or cannot be decoded."""


class FrameTooLarge(ProtocolError):
    """A message over MAX_FRAME: refused by its sender, which says so instead."""


def encode(message: dict[str, Any]) -> bytes:
    payload = msgpack.packb(message, use_bin_type=True, default=_fallback)
    if len(payload) > MAX_FRAME:
        raise FrameTooLarge(
            f"the {'answer' if message.get('op') in ('result', 'chunks') else 'message'} is "
            f"{len(payload) / 2**20:.1f} MB, over the {MAX_FRAME // 2**20} MB limit of one message"
        )
    return HEADER.pack(len(payload)) + payload


def _fallback(value: Any) -> Any:
    # Whatever msgpack cannot carry (sets, custom objects) travels as its repr.
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """Return the next message, or None at end of stream."""
    return (await read_frame(reader))[0]


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict[str, Any] | None, int]:
    """Return the next message and its size in bytes, or (None, 0) at end of stream."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError:
        return None, 0
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes is over the {MAX_FRAME} byte limit")
    try:
        payload = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None, 0
    try:
        return msgpack.unpackb(payload, raw=False), size
    except Exception as exc:
        raise ProtocolError(f"undecodable frame: {exc}") from exc


class Writer:
    """Serialise writes from many tasks onto one stream."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        frame = encode(message)  # before the lock: an oversized frame raises, sends nothing
        async with self._lock:
            self._writer.write(frame)
            await self._writer.drain()

    def close(self) -> None:
        self._writer.close()
