"""Micro-benchmark of the executor seam: what one worker call costs, against a raw floor.

In one run, on this machine, it measures:

1. the floor: a msgpack ping-pong of length-prefixed frames over a socketpair to a bare
   Python subprocess (no sandbox, no Django), the server side on asyncio streams as the
   executor's is;
2. the ProcessExecutor (sandboxed workers, as the server runs them), per call: a trivial
   sync hook and a trivial async hook via `invoke`, a trivial pipe via `stream`;
3. per chunk: a stream-hook session of 2,000 events (one event per batch, and batches
   of 20), and a 2,000-chunk sync-generator pipe alone and through five stream filters.

Each figure is the median of several rounds, in µs and as a ratio to the floor. It runs
against the executor API it finds (before stream-hook sessions, a stream hook is one
`invoke` per event, as `runtime.apply_stream` did), so the same file measures a commit
before and after a change. The machine is shared: run it a few times and read medians.

Run: .venv/bin/python bench/calls.py [--rounds N] [--calls N]
"""

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHUNKS = 2000
FILTERS = 5

# The floor's far side: a bare interpreter answering each frame with one frame.
ECHO_CHILD = """
import socket, struct, sys
import msgpack
sock = socket.socket(fileno=int(sys.argv[1]))
reader = sock.makefile("rb")
header = struct.Struct("!I")
while True:
    head = reader.read(4)
    if len(head) < 4:
        break
    message = msgpack.unpackb(reader.read(header.unpack(head)[0]), raw=False)
    reply = msgpack.packb({"op": "result", "id": message["id"], "value": message["data"]})
    sock.sendall(header.pack(len(reply)) + reply)
"""

SYNC_HOOK = "class Filter:\n    def inlet(self, body):\n        return body\n"
ASYNC_HOOK = "class Filter:\n    async def inlet(self, body):\n        return body\n"
PIPE = "class Pipe:\n    def pipe(self, body):\n        return 'ok'\n"
STREAM_PIPE = (
    "class Pipe:\n    def pipe(self, body):\n"
    f"        for i in range({CHUNKS}):\n            yield f't{{i}} '\n"
)
STREAM_HOOK = "class Filter:\n    def stream(self, event):\n        return event\n"


def setup_django(data_dir: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fnplatform.settings")
    os.environ["FNPLATFORM_DATA_DIR"] = data_dir
    import django

    django.setup()


def plugin_call(function_id: str, source: str):
    from functions.seam import PluginCall
    from functions.services.loader import check_source, source_sha256

    report = check_source(source, function_id=function_id)
    return PluginCall(function_id, report, source=source, sha256=source_sha256(source))


def context():
    from functions.services.context import CallContext

    async def emit(event: dict) -> None:
        return None

    return CallContext(user={"id": "1", "name": "bench", "role": "user"}, event_emitter=emit)


async def timed(run: Callable[[], Awaitable[Any]], count: int, rounds: int) -> float:
    """The median over rounds of the mean µs of one `run`, after a warm-up."""
    for _ in range(min(count, 20)):
        await run()
    means = []
    for _ in range(rounds):
        began = time.perf_counter()
        for _ in range(count):
            await run()
        means.append((time.perf_counter() - began) / count * 1e6)
    return statistics.median(means)


async def timed_once(run: Callable[[], Awaitable[Any]], per: int, rounds: int) -> float:
    """The median over rounds of one `run`'s µs divided by `per` (chunks), after one warm-up."""
    await run()
    means = []
    for _ in range(rounds):
        began = time.perf_counter()
        await run()
        means.append((time.perf_counter() - began) / per * 1e6)
    return statistics.median(means)


# The floor


async def floor(count: int, rounds: int) -> float:
    from functions.workers.protocol import Writer, read_message

    parent, child = socket.socketpair()
    process = subprocess.Popen(
        [sys.executable, "-c", ECHO_CHILD, str(child.fileno())], pass_fds=[child.fileno()]
    )
    child.close()
    reader, raw = await asyncio.open_connection(sock=parent)
    writer = Writer(raw)
    ids = iter(range(10**9))

    async def ping() -> None:
        await writer.send({"op": "call", "id": f"c{next(ids)}", "data": {"messages": []}})
        await read_message(reader)

    try:
        return await timed(ping, count, rounds)
    finally:
        raw.close()
        await raw.wait_closed()
        process.wait(timeout=10)


# The executor


def flat(item: Any) -> list:
    """A stream's item: a batch of chunks (a list), or one chunk (before batches)."""
    return item if isinstance(item, list) else [item]


async def filtered_stream(executor, filters: list, pipe, ctx) -> int:
    """Chunks of the streaming pipe that came out of the stream filters."""
    from functions.services import runtime

    body = {"messages": []}
    batches = runtime.run_pipe(pipe, body, ctx, executor=executor)
    if hasattr(runtime, "stream_through"):
        events = _events(batches)
        out = runtime.stream_through(filters, events, ctx, executor=executor)
        return sum([len(batch) async for batch in out])
    count = 0
    async for item in batches:
        for chunk in flat(item):
            event = {"choices": [{"delta": {"content": chunk.text}}]}
            count += await runtime.apply_stream(filters, event, ctx, executor=executor) is not None
    return count


async def _events(batches) -> AsyncIterator[list[dict]]:
    async for batch in batches:
        yield [{"choices": [{"delta": {"content": chunk.text}}]} for chunk in flat(batch)]


async def session(executor, call, ctx, size: int) -> int:
    """A stream hook over CHUNKS events, in batches of `size` (one call per event before
    sessions existed)."""
    events = [{"choices": [{"delta": {"content": f"t{i} "}}]} for i in range(CHUNKS)]
    if not hasattr(executor, "filter_stream"):
        for event in events:
            await executor.invoke(call, "stream", event, ctx, data_name="event")
        return CHUNKS

    async def batches() -> AsyncIterator[list[dict]]:
        for start in range(0, CHUNKS, size):
            yield events[start : start + size]

    return sum([len(out) async for out in executor.filter_stream(call, batches(), ctx)])


async def measure(args, source_dir: str) -> list[tuple[str, float]]:
    from functions.workers.executor import ProcessExecutor
    from functions.workers.limits import Limits

    rows = [("raw msgpack ping-pong (floor)", await floor(args.calls, args.rounds))]
    executor = ProcessExecutor(
        source_dir=source_dir,
        limits=Limits.from_settings(),
        timeout=60,
        first_chunk_timeout=60,
        max_calls=10**9,  # no recycling in the middle of a measurement
        max_pools=0,
    )
    ctx = context()
    body = {"messages": [{"role": "user", "content": "hi"}]}
    sync, asynchronous = plugin_call("sync_hook", SYNC_HOOK), plugin_call("async_hook", ASYNC_HOOK)
    pipe, streaming = plugin_call("pipe", PIPE), plugin_call("stream_pipe", STREAM_PIPE)
    hook = plugin_call("stream_hook", STREAM_HOOK)
    filters = [plugin_call(f"stream_filter_{n}", STREAM_HOOK) for n in range(FILTERS)]
    try:
        await executor.warm([sync, asynchronous, pipe, streaming, hook, *filters])
        rows.append(
            (
                "invoke: sync hook",
                await timed(
                    lambda: executor.invoke(sync, "inlet", body, ctx), args.calls, args.rounds
                ),
            )
        )
        rows.append(
            (
                "invoke: async hook",
                await timed(
                    lambda: executor.invoke(asynchronous, "inlet", body, ctx),
                    args.calls,
                    args.rounds,
                ),
            )
        )

        async def whole_pipe() -> None:
            async for _ in executor.stream(pipe, "pipe", body, ctx):
                pass

        rows.append(("stream: trivial pipe", await timed(whole_pipe, args.calls, args.rounds)))
        for size in (1, 20):
            rows.append(
                (
                    f"stream hook, {CHUNKS} events in batches of {size}: per event",
                    await timed_once(
                        lambda size=size: session(executor, hook, ctx, size), CHUNKS, args.rounds
                    ),
                )
            )
        rows.append(
            (
                f"pipe streaming {CHUNKS} chunks: per chunk",
                await timed_once(
                    lambda: filtered_stream(executor, [], streaming, ctx), CHUNKS, args.rounds
                ),
            )
        )
        rows.append(
            (
                f"the same through {FILTERS} stream filters: per chunk",
                await timed_once(
                    lambda: filtered_stream(executor, filters, streaming, ctx), CHUNKS, args.rounds
                ),
            )
        )
    finally:
        await executor.stop()
    return rows


def report(rows: list[tuple[str, float]]) -> None:
    floor_us = rows[0][1]
    width = max(len(name) for name, _ in rows)
    print(f"{'':{width}}  {'µs':>9}  {'x floor':>8}")
    for name, us in rows:
        print(f"{name:{width}}  {us:9.1f}  {us / floor_us:8.1f}")
    plain, filtered = rows[-2][1], rows[-1][1]
    print(
        f"\nchunks/s: plain stream {1e6 / plain:,.0f}, through {FILTERS} stream filters "
        f"{1e6 / filtered:,.0f} ({plain / filtered:.1%} of plain)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per figure (median)")
    parser.add_argument("--calls", type=int, default=300, help="calls per round")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fnplatform-calls-data-") as data_dir:
        setup_django(data_dir)
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} cores, "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        report(asyncio.run(measure(args, os.path.join(data_dir, "sources"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
