"""Benchmark the plugin runtime over loopback and print one table.

Starts the app with the embedded default (SQLite and the in-memory channel layer in a
fresh temporary data dir), installs trivial plugins through bench/fixtures.py, runs
daphne on a free port and measures with httpx:

1. a non-streaming completion through a trivial pipe, at concurrency 1 and 32;
2. the same with five global filters (trivial inlet and outlet);
3. a streamed completion from a pipe yielding 2,000 chunks: time to first chunk, chunks/s;
4. an action call.

Run: .venv/bin/python bench/runtime.py [--quick] [--json PATH] [--timeout SECONDS]
It stops by itself; daphne is stopped and the data dir removed whatever happens.
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
DAPHNE = Path(PYTHON).parent / "daphne"

CHAT_BODY = {"model": "bench_echo", "messages": [{"role": "user", "content": "hi"}]}
STREAM_BODY = {
    "model": "bench_stream",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
}
ACTION_BODY = {"model": "bench_echo", "messages": [], "id": "m1"}
STREAM_CHUNKS = 2000

# Environment variables that would take the app away from its embedded default or
# make it call out (upstream model connections).
CLEARED_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "OPENAI_API_BASE_URLS",
    "OPENAI_API_BASE_URL",
    "OPENAI_API_KEYS",
    "OPENAI_API_KEY",
    "DEBUG",
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "FNPLATFORM_SECRETS_KEY",
)


@dataclass
class Counts:
    warmup: int = 20
    serial: int = 200  # requests at concurrency 1
    concurrent: int = 1000  # requests at concurrency 32
    concurrency: int = 32
    stream_runs: int = 10
    actions: int = 200
    phase_seconds: float = 60.0  # a phase stops early (and says so) past this


QUICK = Counts(warmup=5, serial=30, concurrent=128, stream_runs=3, actions=30, phase_seconds=20)


@dataclass
class Row:
    scenario: str
    concurrency: int
    count: int
    p50_ms: float | None
    p99_ms: float | None
    throughput: float | None
    unit: str
    errors: int = 0
    truncated: bool = False
    notes: list[str] = field(default_factory=list)


class BenchError(RuntimeError):
    pass


# Machine description


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        (
            int(line.split()[1])
            for line in _read("/proc/meminfo").splitlines()
            if line.startswith("MemTotal:")
        ),
        0,
    )
    os_name = next(
        (
            line.split("=", 1)[1].strip().strip('"')
            for line in _read("/etc/os-release").splitlines()
            if line.startswith("PRETTY_NAME=")
        ),
        platform.system(),
    )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{os_name}, {platform.system()} {platform.release()} {platform.machine()}",
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def commit() -> str | None:
    """The checked-out commit, read from .git (falls back to git when that fails)."""
    try:
        git_dir = ROOT / ".git"
        if git_dir.is_file():  # a worktree: "gitdir: <path>"
            git_dir = (ROOT / git_dir.read_text().split(":", 1)[1].strip()).resolve()
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:7]
        ref = head[5:]
        common = git_dir
        if (git_dir / "commondir").is_file():
            common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
        for base in (git_dir, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip()[:7]
        for line in _read(str(common / "packed-refs")).splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:7]
    except OSError:
        pass
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


# The app


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class App:
    """The app in a temporary data dir: migrated, seeded, and served by daphne."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.data_dir = Path(tempfile.mkdtemp(prefix="fnplatform-bench-"))
        self.env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
        self.env["FNPLATFORM_DATA_DIR"] = str(self.data_dir)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.daphne: subprocess.Popen | None = None
        self.log_path = self.data_dir / "daphne.log"

    def remaining(self, cap: float = 120.0) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise BenchError("out of time (--timeout)")
        return min(cap, left)

    def run(self, *args: str) -> str:
        try:
            done = subprocess.run(
                [PYTHON, *args],
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.remaining(),
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{' '.join(args)} timed out") from exc
        if done.returncode != 0:
            raise BenchError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def fixtures(self, step: str) -> dict:
        out = self.run(str(BENCH_DIR / "fixtures.py"), step)
        return json.loads(out.strip().splitlines()[-1])

    def migrate(self) -> None:
        self.run("manage.py", "migrate", "--noinput", "--verbosity", "0")

    def start(self) -> None:
        log = self.log_path.open("w")
        # Verbosity 0: no per-request access log lines, which would be measured too.
        self.daphne = subprocess.Popen(
            [
                str(DAPHNE),
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-v",
                "0",
                "fnplatform.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        until = time.monotonic() + self.remaining(60)
        while time.monotonic() < until:
            if self.daphne.poll() is not None:
                raise BenchError(f"daphne exited with {self.daphne.returncode}:\n{self.log()}")
            try:
                response = httpx.get(f"{self.base_url}/health", timeout=2)
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise BenchError(f"daphne did not answer /health in time:\n{self.log()}")

    def log(self, lines: int = 40) -> str:
        return "\n".join(_read(str(self.log_path)).splitlines()[-lines:])

    def stop(self) -> None:
        if self.daphne is not None and self.daphne.poll() is None:
            self.daphne.terminate()
            try:
                self.daphne.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.daphne.kill()
                self.daphne.wait(timeout=10)

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)


# Measurements


def ms(seconds: float) -> float:
    return seconds * 1000.0


def p50(samples: list[float]) -> float | None:
    return statistics.median(samples) if samples else None


def p99(samples: list[float]) -> float | None:
    """The 99th percentile; None below 100 samples, where it would only be the maximum."""
    if len(samples) < 100:
        return None
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    truncated: bool = False


async def hammer(client, total: int, concurrency: int, budget: float, send) -> Run:
    """Run `send` total times with `concurrency` workers; stop starting new ones past budget."""
    run = Run()
    next_index = 0
    start = time.perf_counter()
    stop_at = start + budget

    async def worker() -> None:
        nonlocal next_index
        while next_index < total:
            if time.perf_counter() > stop_at:
                run.truncated = True
                return
            next_index += 1
            began = time.perf_counter()
            try:
                error = await send(client)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if error:
                run.errors.append(error)
            else:
                run.latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.wall = time.perf_counter() - start
    return run


async def send_completion(client: httpx.AsyncClient) -> str | None:
    response = await client.post("/api/chat/completions", json=CHAT_BODY)
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    content = response.json()["choices"][0]["message"]["content"]
    return None if content == "ok" else f"unexpected content {content!r}"


async def send_action(client: httpx.AsyncClient) -> str | None:
    response = await client.post("/api/chat/actions/bench_action", json=ACTION_BODY)
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return None if response.json() == {"ok": True} else f"unexpected {response.text[:200]}"


def row_of(scenario: str, concurrency: int, run: Run) -> Row:
    samples = [ms(s) for s in run.latencies]
    done = len(run.latencies)
    return Row(
        scenario=scenario,
        concurrency=concurrency,
        count=done,
        p50_ms=p50(samples),
        p99_ms=p99(samples),
        throughput=done / run.wall if run.wall and done else None,
        unit="req/s",
        errors=len(run.errors),
        truncated=run.truncated,
        notes=sorted(set(run.errors))[:3],
    )


async def completions(client, counts: Counts, label: str) -> list[Row]:
    warm = await hammer(client, counts.warmup, 1, counts.phase_seconds, send_completion)
    if warm.errors:
        raise BenchError(f"{label}: warm-up failed: {warm.errors[0]}")
    rows = []
    for concurrency, total in ((1, counts.serial), (counts.concurrency, counts.concurrent)):
        run = await hammer(client, total, concurrency, counts.phase_seconds, send_completion)
        rows.append(row_of(label, concurrency, run))
    return rows


SLEEPERS = 4
SLEEP_BODY = {"model": "bench_sleeper", "messages": [{"role": "user", "content": "hi"}]}


async def blocking(client, counts: Counts) -> list[Row]:
    """Four sync pipes sleep 2 s at once; trivial requests are timed one after another
    meanwhile. With the server blocked they would wait for the sleeps to end."""
    started = time.perf_counter()

    async def sleep_call() -> tuple[float, str | None]:
        response = await client.post("/api/chat/completions", json=SLEEP_BODY)
        error = None if response.status_code == 200 else f"HTTP {response.status_code}"
        return time.perf_counter() - started, error

    sleepers = [asyncio.create_task(sleep_call()) for _ in range(SLEEPERS)]
    await asyncio.sleep(0.3)  # the sleeps are under way
    run = Run()
    begun = time.perf_counter()
    while not all(task.done() for task in sleepers):
        t0 = time.perf_counter()
        error = await send_completion(client)
        if error:
            run.errors.append(error)
        else:
            run.latencies.append(time.perf_counter() - t0)
    run.wall = time.perf_counter() - begun
    results = await asyncio.gather(*sleepers)
    sleep_run = Run(
        latencies=[seconds for seconds, error in results if error is None],
        errors=[error for _, error in results if error],
        wall=max(seconds for seconds, _ in results),
    )
    return [
        row_of(f"Trivial pipe beside {SLEEPERS} sync pipes sleeping 2 s", 1, run),
        row_of(f"The {SLEEPERS} sleeping pipes (2 s each), all at once", SLEEPERS, sleep_run),
    ]


async def one_stream(client: httpx.AsyncClient) -> tuple[float, float, int]:
    """Return (time to first chunk, whole time, data chunks before [DONE])."""
    began = time.perf_counter()
    first = None
    chunks = 0
    async with client.stream("POST", "/api/chat/completions", json=STREAM_BODY) as response:
        if response.status_code != 200:
            await response.aread()
            raise BenchError(f"stream: HTTP {response.status_code}: {response.text[:200]}")
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                if first is None:
                    raise BenchError("stream: no data chunk before [DONE]")
                return first, time.perf_counter() - began, chunks
            if '"error"' in data and json.loads(data).get("error"):
                raise BenchError(f"stream: error frame {data[:200]}")
            chunks += 1
            if first is None:
                first = time.perf_counter() - began
    raise BenchError("stream: ended without data: [DONE]")


async def streaming(client, counts: Counts) -> list[Row]:
    await one_stream(client)  # warm-up
    firsts, totals, rates, seen = [], [], [], set()
    stop_at = time.perf_counter() + counts.phase_seconds
    truncated = False
    for _ in range(counts.stream_runs):
        if time.perf_counter() > stop_at:
            truncated = True
            break
        first, total, chunks = await one_stream(client)
        firsts.append(ms(first))
        totals.append(ms(total))
        rates.append(chunks / total)
        seen.add(chunks)
    notes = [f"{'/'.join(map(str, sorted(seen)))} data chunks per stream"]
    label = f"Streamed completion, {STREAM_CHUNKS:,} chunks"
    return [
        Row(
            f"{label}: first chunk",
            1,
            len(firsts),
            p50(firsts),
            p99(firsts),
            None,
            "",
            truncated=truncated,
        ),
        Row(
            f"{label}: whole stream",
            1,
            len(totals),
            p50(totals),
            p99(totals),
            p50(rates),
            "chunks/s",
            truncated=truncated,
            notes=notes,
        ),
    ]


async def actions(client, counts: Counts) -> list[Row]:
    warm = await hammer(client, counts.warmup, 1, counts.phase_seconds, send_action)
    if warm.errors:
        raise BenchError(f"action: warm-up failed: {warm.errors[0]}")
    run = await hammer(client, counts.actions, 1, counts.phase_seconds, send_action)
    return [row_of("Action call (trivial action)", 1, run)]


async def measure(app: App, counts: Counts, key: str) -> list[Row]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=counts.concurrency * 2, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=app.base_url, headers=headers, limits=limits, timeout=30
    ) as client:
        print("  completions through a trivial pipe ...", file=sys.stderr)
        rows = await completions(client, counts, "Completion, trivial pipe")
        print("  streamed completions ...", file=sys.stderr)
        stream_rows = await streaming(client, counts)
        print("  a trivial pipe beside blocking sync pipes ...", file=sys.stderr)
        stream_rows += await blocking(client, counts)
        print("  action calls ...", file=sys.stderr)
        await asyncio.to_thread(app.fixtures, "action")
        action_rows = await actions(client, counts)
        print("  completions with five global filters ...", file=sys.stderr)
        await asyncio.to_thread(app.fixtures, "filters")
        rows += await completions(client, counts, "Completion, trivial pipe + 5 global filters")
    return rows + stream_rows + action_rows


# Output


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(rows: list[Row]) -> str:
    header = ["Scenario", "Conc.", "N", "p50 ms", "p99 ms", "Throughput", "Errors"]
    body = [
        [
            row.scenario + (" *" if row.truncated else ""),
            str(row.concurrency),
            str(row.count),
            fmt(row.p50_ms, 2),
            fmt(row.p99_ms, 2),
            f"{fmt(row.throughput, 0)} {row.unit}".strip() if row.throughput else "-",
            str(row.errors),
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    lines = [line(header), rule, *(line(cells) for cells in body)]
    notes = [f"{row.scenario}: {note}" for row in rows for note in row.notes]
    if any(row.truncated for row in rows):
        notes.append("* stopped at the phase time limit before reaching its count")
    return "\n".join(lines + (["", *notes] if notes else []))


def describe(info: dict, revision: str | None, counts: Counts, quick: bool) -> str:
    cores = f"{info['cores']} cores"
    if info["usable_cores"] and info["usable_cores"] != info["cores"]:
        cores += f" ({info['usable_cores']} usable)"
    return "\n".join(
        [
            "fnplatform runtime benchmark" + (" (--quick)" if quick else ""),
            f"commit:  {revision or 'unknown'}",
            f"cpu:     {info['cpu']}, {cores}",
            f"memory:  {info['memory_gib']} GiB",
            f"python:  {info['python']}",
            f"os:      {info['os']}",
            f"load:    {info['load_average_1m']} (1-minute load average at start)",
            "server:  daphne, one process, SQLite + in-memory channel layer, client on loopback",
            f"counts:  warm-up {counts.warmup}, {counts.serial} requests at c=1, "
            f"{counts.concurrent} at c={counts.concurrency}, {counts.stream_runs} streams, "
            f"{counts.actions} action calls",
        ]
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--timeout", type=float, default=300, help="stop after this many seconds (default 300)"
    )
    return parser.parse_args(argv)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def run(args, counts: Counts, deadline: float) -> dict:
    info, revision = machine(), commit()
    print(describe(info, revision, counts, args.quick), flush=True)
    app = App(deadline)
    print("executor: process (sandboxed workers, one set per function)", flush=True)
    # Cleanup runs outside the event loop, so it happens on any exit, SIGTERM included.
    try:
        print(f"Preparing the app in {app.data_dir} ...", file=sys.stderr)
        app.migrate()
        key = app.fixtures("setup")["api_key"]
        app.start()
        print(f"daphne on {app.base_url}; measuring:", file=sys.stderr)
        rows = asyncio.run(asyncio.wait_for(measure(app, counts, key), timeout=app.remaining(600)))
    except BaseException:
        if app.daphne is not None:
            print(f"daphne log (last lines):\n{app.log()}", file=sys.stderr)
        raise
    finally:
        app.cleanup()
    print()
    print(table(rows), flush=True)
    return {
        "machine": info,
        "commit": revision,
        "quick": args.quick,
        "counts": asdict(counts),
        "results": [asdict(row) for row in rows],
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    counts = QUICK if args.quick else Counts()
    # A SIGTERM unwinds like Ctrl-C, so daphne is stopped and the data dir removed.
    signal.signal(signal.SIGTERM, _terminate)
    deadline = time.monotonic() + args.timeout
    try:
        result = run(args, counts, deadline)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except TimeoutError:
        print("benchmark failed: out of time (--timeout)", file=sys.stderr)
        return 1
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
