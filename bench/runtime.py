"""Benchmark the plugin runtime over loopback against the bare-Django floor, in one run.

Starts two servers with the same daphne binary and flags on loopback: the app with the
embedded default (SQLite and the in-memory channel layer in a fresh temporary data dir,
trivial plugins installed through bench/fixtures.py), and the floor (bench/floor: a bare
Django async view answering a constant completion or a constant SSE stream). The same
httpx client settings (keep-alive, limits) drive both, taking turns, and measure:

1. a non-streaming completion, floor and trivial pipe, at concurrency 1 and 32;
2. a 2,000-chunk stream: the floor's, a sync and an async generator pipe's;
3. a trivial pipe beside four blocking sync pipes;
4. an action call;
5. five global filters: completions with hooks the load report proves are no-ops
   (`return body`), then with trivial hooks it cannot prove (they read the body first),
   `/api/chat/completed` with each, and the stream again once the opaque filters have a
   `stream` hook;
6. the server's and its workers' memory, daphne's start, and a second `make run` (on
   this checkout, with a fresh data dir) to the first 200 of /health.

It prints issue 10's targets as ratios to the floor (or to the trivial pipe) measured in
this run, each met or not, then every measured row.

Run: .venv/bin/python bench/runtime.py [--quick] [--json PATH] [--timeout SECONDS]
         [--no-make-run]
It stops by itself; every server it started is stopped and its temporary dirs removed
whatever happens.
"""

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
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
ASTREAM_BODY = STREAM_BODY | {"model": "bench_astream"}
ACTION_BODY = {"model": "bench_echo", "messages": [], "id": "m1"}
COMPLETED_BODY = {
    "model": "bench_echo",
    "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}],
    "chat_id": "bench-chat",
    "id": "m1",
}
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
    stream_runs: int = 20  # per side: floor, sync and async generator pipes
    filtered_stream_runs: int = 3  # a stream through five stream hooks is slow
    actions: int = 200  # action calls, and /api/chat/completed calls
    rounds: int = 4  # paired sides take turns in this many batches
    phase_seconds: float = 60.0  # a phase stops early (and says so) past this
    make_run: bool = True


QUICK = Counts(
    warmup=5,
    serial=40,
    concurrent=128,
    stream_runs=3,
    filtered_stream_runs=1,
    actions=30,
    rounds=2,
    phase_seconds=20,
    make_run=False,
)


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


# The servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Deadline:
    def __init__(self, at: float):
        self.at = at

    def remaining(self, cap: float = 120.0) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise BenchError("out of time (--timeout)")
        return min(cap, left)


def wait_for_health(base_url: str, until: float, process: subprocess.Popen, log) -> float:
    """Poll GET /health until a 200; return the monotonic time it came."""
    while time.monotonic() < until:
        if process.poll() is not None:
            raise BenchError(f"server exited with {process.returncode}:\n{log()}")
        try:
            response = httpx.get(f"{base_url}/health", timeout=2)
            if response.status_code == 200:
                return time.monotonic()
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise BenchError(f"the server did not answer /health in time:\n{log()}")


class Daphne:
    """One ASGI application served by the project's daphne on a free loopback port,
    with the same flags for the app and the floor."""

    def __init__(self, name: str, application: str, cwd: Path, env: dict, log_dir: Path, deadline):
        self.name = name
        self.application = application
        self.cwd = cwd
        self.env = env
        self.deadline = deadline
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = log_dir / f"{name}-daphne.log"

    def start(self) -> float:
        """Start daphne; return the seconds from launching it to the first 200 of /health."""
        log = self.log_path.open("a")
        began = time.monotonic()
        # Verbosity 0: no per-request access log lines, which would be measured too.
        self.process = subprocess.Popen(
            [str(DAPHNE), "-b", "127.0.0.1", "-p", str(self.port), "-v", "0", self.application],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        until = time.monotonic() + self.deadline.remaining(60)
        return wait_for_health(self.base_url, until, self.process, self.log) - began

    def log(self, lines: int = 40) -> str:
        return "\n".join(_read(str(self.log_path)).splitlines()[-lines:])

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.poll() is None else None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class App:
    """The app in a temporary data dir: migrated, seeded, and served by daphne."""

    def __init__(self, deadline: Deadline):
        self.deadline = deadline
        self.data_dir = Path(tempfile.mkdtemp(prefix="fnplatform-bench-"))
        self.env = base_env()
        self.env["FNPLATFORM_DATA_DIR"] = str(self.data_dir)
        self.server = Daphne(
            "app", "fnplatform.asgi:application", ROOT, self.env, self.data_dir, deadline
        )
        self.base_url = self.server.base_url

    def run(self, *args: str) -> str:
        try:
            done = subprocess.run(
                [PYTHON, *args],
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.deadline.remaining(),
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

    def start(self) -> float:
        return self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def log(self) -> str:
        return self.server.log()

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class Floor:
    """bench/floor served by the same daphne, run from bench/ so that the project's
    root is not on its path: no database, no apps, no middleware."""

    def __init__(self, deadline: Deadline):
        self.dir = Path(tempfile.mkdtemp(prefix="fnplatform-bench-floor-"))
        env = {k: v for k, v in base_env().items() if k != "PYTHONPATH"}
        env["DJANGO_SETTINGS_MODULE"] = "floor.settings"
        self.server = Daphne("floor", "floor.asgi:application", BENCH_DIR, env, self.dir, deadline)
        self.base_url = self.server.base_url

    def start(self) -> float:
        return self.server.start()

    def log(self) -> str:
        return self.server.log()

    def cleanup(self) -> None:
        try:
            self.server.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class MakeRun:
    """`make run` on this (already set up) checkout with a fresh data dir and a free
    port: the first run sets the data dir up, the second is the one timed."""

    def __init__(self, deadline: Deadline):
        self.deadline = deadline
        self.data_dir = Path(tempfile.mkdtemp(prefix="fnplatform-bench-make-"))
        self.env = {
            k: v
            for k, v in base_env().items()
            if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VENV", "PYTHONPATH")
        }
        port = free_port()
        self.env |= {
            "FNPLATFORM_DATA_DIR": str(self.data_dir),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "FNPLATFORM_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        }
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = self.data_dir / "make-run.log"
        self.process: subprocess.Popen | None = None

    def log(self, lines: int = 40) -> str:
        return "\n".join(_read(str(self.log_path)).splitlines()[-lines:])

    def once(self) -> float:
        """Launch `make run`, return the seconds to the first 200 of /health, stop it."""
        log = self.log_path.open("a")
        began = time.monotonic()
        # A session of its own: make, daphne and anything they start stop together.
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        try:
            until = time.monotonic() + self.deadline.remaining(120)
            return wait_for_health(self.base_url, until, self.process, self.log) - began
        finally:
            self.stop()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)


# Memory


def _status_kib(pid: int, key: str) -> int | None:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def _pss_kib(pid: int) -> int | None:
    for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return None


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read(f"/proc/{entry.name}/stat")
        if not stat:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Memory:
    server_rss_mb: float | None
    workers: int
    workers_rss_mb: float
    workers_pss_mb: float | None
    largest_worker_rss_mb: float
    other_processes: int
    other_rss_mb: float


def memory_of(pid: int | None) -> Memory | None:
    """The server's resident memory, and its workers' (the processes running
    functions.workers.worker among its descendants; bubblewrap's are the others)."""
    if pid is None:
        return None
    workers, others = [], []
    for child in descendants(pid):
        cmdline = _read(f"/proc/{child}/cmdline").replace("\0", " ")
        rss = _status_kib(child, "VmRSS")
        if rss is None:
            continue
        if "functions.workers.worker" in cmdline and "bwrap" not in cmdline.split(" ", 1)[0]:
            workers.append((child, rss))
        else:
            others.append((child, rss))
    pss = [_pss_kib(child) for child, _ in workers]
    server = _status_kib(pid, "VmRSS")
    return Memory(
        server_rss_mb=server / 1024 if server is not None else None,
        workers=len(workers),
        workers_rss_mb=sum(rss for _, rss in workers) / 1024,
        workers_pss_mb=sum(pss) / 1024 if pss and None not in pss else None,
        largest_worker_rss_mb=max((rss for _, rss in workers), default=0) / 1024,
        other_processes=len(others),
        other_rss_mb=sum(rss for _, rss in others) / 1024,
    )


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

    def add(self, other: "Run") -> None:
        self.latencies += other.latencies
        self.errors += other.errors
        self.wall += other.wall
        self.truncated = self.truncated or other.truncated


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


async def alternate(sides: list, total: int, concurrency: int, counts: "Counts") -> list[Run]:
    """Run each (client, send) side `total` times, in `counts.rounds` alternating batches,
    so that the machine's load drifts over all sides alike."""
    runs = [Run() for _ in sides]
    batch = max(1, total // counts.rounds)
    budget = counts.phase_seconds / counts.rounds
    for _ in range(counts.rounds):
        for run, (client, send) in zip(runs, sides, strict=True):
            run.add(await hammer(client, batch, concurrency, budget, send))
    return runs


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


async def send_completed(client: httpx.AsyncClient) -> str | None:
    response = await client.post("/api/chat/completed", json=COMPLETED_BODY)
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    messages = response.json().get("messages") or [{}]
    return None if messages[-1].get("content") == "ok" else f"unexpected {response.text[:200]}"


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


async def warm(client, counts: Counts, label: str, send=send_completion) -> None:
    run = await hammer(client, counts.warmup, 1, counts.phase_seconds, send)
    if run.errors:
        raise BenchError(f"{label}: warm-up failed: {run.errors[0]}")


async def completions(sides: list, counts: Counts, labels: list[str]) -> list[Row]:
    """Serial then concurrent completions, each side in alternating batches."""
    rows = []
    for concurrency, total in ((1, counts.serial), (counts.concurrency, counts.concurrent)):
        runs = await alternate(sides, total, concurrency, counts)
        rows += [row_of(label, concurrency, run) for label, run in zip(labels, runs, strict=True)]
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


async def one_stream(client: httpx.AsyncClient, body: dict) -> tuple[float, float, int]:
    """Return (time to first chunk, whole time, data chunks before [DONE])."""
    began = time.perf_counter()
    first = None
    chunks = 0
    async with client.stream("POST", "/api/chat/completions", json=body) as response:
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


@dataclass
class Streams:
    firsts: list[float] = field(default_factory=list)
    totals: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    truncated: bool = False

    def rows(self, label: str) -> list[Row]:
        notes = [f"{'/'.join(map(str, sorted(self.seen)))} data chunks per stream"]
        return [
            Row(
                f"{label}: first chunk",
                1,
                len(self.firsts),
                p50(self.firsts),
                p99(self.firsts),
                None,
                "",
                truncated=self.truncated,
            ),
            Row(
                f"{label}: whole stream",
                1,
                len(self.totals),
                p50(self.totals),
                p99(self.totals),
                p50(self.rates),
                "chunks/s",
                truncated=self.truncated,
                notes=notes,
            ),
        ]


async def streaming(sides: list, runs: int, counts: Counts) -> list[Streams]:
    """`runs` streams from each (client, body) side, taking turns."""
    for client, body in sides:
        await one_stream(client, body)  # warm-up
    results = [Streams() for _ in sides]
    stop_at = time.perf_counter() + counts.phase_seconds
    for _ in range(runs):
        if time.perf_counter() > stop_at:
            for result in results:
                result.truncated = True
            break
        for result, (client, body) in zip(results, sides, strict=True):
            first, total, chunks = await one_stream(client, body)
            result.firsts.append(ms(first))
            result.totals.append(ms(total))
            result.rates.append(chunks / total)
            result.seen.add(chunks)
    return results


async def serial(client, counts: Counts, label: str, send) -> Row:
    await warm(client, counts, label, send)
    run = await hammer(client, counts.actions, 1, counts.phase_seconds, send)
    return row_of(label, 1, run)


def client_for(base_url: str, key: str, counts: Counts) -> httpx.AsyncClient:
    """The same client, limits and keep-alive for the app and the floor."""
    limits = httpx.Limits(max_connections=counts.concurrency * 2, max_keepalive_connections=64)
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {key}"},
        limits=limits,
        timeout=30,
    )


FLOOR = "Floor (bare Django view)"
TRIVIAL = "Completion, trivial pipe"
FILTERED = "Completion, trivial pipe + 5 global no-op filters"
OPAQUE = "Completion, trivial pipe + 5 global opaque filters"
COMPLETED = "/api/chat/completed, 5 global no-op filters (outlet)"
COMPLETED_OPAQUE = "/api/chat/completed, 5 global opaque filters (outlet)"
STREAM_LABEL = f"Streamed completion, {STREAM_CHUNKS:,} chunks"


async def measure(app: App, floor: Floor, counts: Counts, key: str) -> dict[str, Row]:
    """Every measured row, by name; the floor's and the app's taking turns where paired."""
    out: dict[str, Row] = {}

    def keep(*rows: Row) -> None:
        for row in rows:
            out[f"{row.scenario} @{row.concurrency}"] = row

    async with (
        client_for(app.base_url, key, counts) as client,
        client_for(floor.base_url, key, counts) as floor_client,
    ):
        sides = [(floor_client, send_completion), (client, send_completion)]
        print("  completions: floor and trivial pipe, taking turns ...", file=sys.stderr)
        await warm(floor_client, counts, "floor")
        await warm(client, counts, "trivial pipe")
        keep(*await completions(sides, counts, [FLOOR, TRIVIAL]))

        print("  streams: floor, sync and async generator pipes, taking turns ...", file=sys.stderr)
        floor_s, sync_s, async_s = await streaming(
            [(floor_client, STREAM_BODY), (client, STREAM_BODY), (client, ASTREAM_BODY)],
            counts.stream_runs,
            counts,
        )
        keep(*floor_s.rows(f"{FLOOR}, {STREAM_CHUNKS:,}-chunk SSE"))
        keep(*sync_s.rows(f"{STREAM_LABEL}, sync generator"))
        keep(*async_s.rows(f"{STREAM_LABEL}, async generator"))

        print("  a trivial pipe beside blocking sync pipes ...", file=sys.stderr)
        keep(*await blocking(client, counts))

        print("  action calls ...", file=sys.stderr)
        await asyncio.to_thread(app.fixtures, "action")
        keep(await serial(client, counts, "Action call (trivial action)", send_action))

        print("  five global no-op filters (inlet, outlet) ...", file=sys.stderr)
        await asyncio.to_thread(app.fixtures, "filters")
        await warm(client, counts, "filters")
        keep(*await completions([(client, send_completion)], counts, [FILTERED]))
        keep(await serial(client, counts, COMPLETED, send_completed))

        print("  five global opaque filters (inlet, outlet) ...", file=sys.stderr)
        reports = (await asyncio.to_thread(app.fixtures, "opaque-filters"))["reports"]
        if any(r["noop_hooks"] for r in reports.values()):
            raise BenchError(f"opaque-filters: hooks proved no-ops: {reports}")
        await warm(client, counts, "opaque filters")
        keep(*await completions([(client, send_completion)], counts, [OPAQUE]))
        keep(await serial(client, counts, COMPLETED_OPAQUE, send_completed))

        print("  five global filters with a stream hook ...", file=sys.stderr)
        reports = (await asyncio.to_thread(app.fixtures, "stream-filters"))["reports"]
        if not all("stream" in r["hooks"] and not r["noop_hooks"] for r in reports.values()):
            raise BenchError(f"stream-filters: no opaque stream hook in the reports: {reports}")
        (filtered_s,) = await streaming(
            [(client, STREAM_BODY)], counts.filtered_stream_runs, counts
        )
        keep(*filtered_s.rows(f"{STREAM_LABEL}, sync generator + 5 stream filters"))
    return out


def restart_and_make_run(app: App, floor: Floor, counts: Counts, deadline) -> dict:
    """Startup times: daphne on the app's set-up data dir and on the floor, then `make run`
    twice on this checkout (the second is the target), each to the first 200 of /health."""
    print("  startup: daphne again on the set-up data dir, then the floor ...", file=sys.stderr)
    app.stop()
    starts = {"app_daphne_restart_s": app.start()}
    app.stop()
    floor.server.stop()
    starts["floor_daphne_restart_s"] = floor.start()
    floor.server.stop()
    if not counts.make_run:
        return starts
    make = MakeRun(deadline)
    try:
        print("  startup: make run, first (sets up a fresh data dir) ...", file=sys.stderr)
        starts["make_run_first_s"] = make.once()
        print("  startup: make run, second (timed) ...", file=sys.stderr)
        starts["make_run_second_s"] = make.once()
    except BenchError as exc:
        starts["make_run_error"] = f"{exc}\n{make.log()}"
    finally:
        make.cleanup()
    return starts


# Targets


@dataclass
class Target:
    measure: str
    floor: str
    fnplatform: str
    ratio: str
    target: str
    met: bool | None  # None: not measured


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def targets(out: dict[str, Row], starts: dict, memory: Memory | None) -> list[Target]:
    def row(name: str, concurrency: int = 1) -> Row | None:
        return out.get(f"{name} @{concurrency}")

    def p(name: str, concurrency: int = 1) -> float | None:
        found = row(name, concurrency)
        return found.p50_ms if found else None

    def tput(name: str, concurrency: int = 1) -> float | None:
        found = row(name, concurrency)
        return found.throughput if found else None

    def at_most(r: float | None, limit: float) -> bool | None:
        return None if r is None else r <= limit

    def at_least(r: float | None, limit: float) -> bool | None:
        return None if r is None else r >= limit

    def x(r: float | None) -> str:
        if r is None:
            return "-"
        return f"{r:.3f}x" if r < 0.1 else f"{r:.2f}x"

    conc = next(
        (
            row.concurrency
            for key, row in out.items()
            if key.startswith(TRIVIAL + " @") and row.concurrency > 1
        ),
        32,
    )
    result = []
    floor_p50, trivial_p50 = p(FLOOR), p(TRIVIAL)
    r = _ratio(trivial_p50, floor_p50)
    result.append(
        Target(
            "Trivial pipe, c=1, p50",
            f"{fmt(floor_p50, 2)} ms",
            f"{fmt(trivial_p50, 2)} ms",
            x(r),
            "<= 1.5x floor",
            at_most(r, 1.5),
        )
    )
    floor_rps, trivial_rps = tput(FLOOR, conc), tput(TRIVIAL, conc)
    r = _ratio(trivial_rps, floor_rps)
    result.append(
        Target(
            f"Trivial pipe, c={conc}, req/s",
            f"{fmt(floor_rps, 0)} req/s",
            f"{fmt(trivial_rps, 0)} req/s",
            x(r),
            ">= 0.5x floor",
            at_least(r, 0.5),
        )
    )
    for label, kind in ((FILTERED, "provable no-op"), (OPAQUE, "opaque trivial")):
        filtered_p50 = p(label)
        per_filter = (filtered_p50 - trivial_p50) / 5 if filtered_p50 and trivial_p50 else None
        r = _ratio(per_filter, floor_p50)
        result.append(
            Target(
                f"Each of 5 {kind} filters (inlet, outlet), c=1, added p50",
                f"{fmt(floor_p50, 2)} ms (p50)",
                f"{fmt(per_filter, 2)} ms",
                f"{x(r)} floor p50",
                "< 0.2 ms",
                None if per_filter is None else per_filter < 0.2,
            )
        )
    sync_rate = tput(f"{STREAM_LABEL}, sync generator: whole stream")
    filtered_rate = tput(f"{STREAM_LABEL}, sync generator + 5 stream filters: whole stream")
    r = _ratio(filtered_rate, sync_rate)
    result.append(
        Target(
            "Stream with 5 stream filters vs without, chunks/s",
            "-",
            f"{fmt(filtered_rate, 0)} vs {fmt(sync_rate, 0)} chunks/s",
            x(r),
            ">= 0.8x (loses < 20 %)",
            None if r is None else r > 0.8,
        )
    )
    floor_rate = tput(f"{FLOOR}, {STREAM_CHUNKS:,}-chunk SSE: whole stream")
    r = _ratio(sync_rate, floor_rate)
    result.append(
        Target(
            f"{STREAM_CHUNKS:,}-chunk stream (sync generator), chunks/s",
            f"{fmt(floor_rate, 0)} chunks/s",
            f"{fmt(sync_rate, 0)} chunks/s",
            x(r),
            ">= 2x floor",
            at_least(r, 2.0),
        )
    )

    def against_trivial(title: str, measured: float | None, limit: float) -> Target:
        r = _ratio(measured, trivial_p50)
        return Target(
            title,
            "-",
            f"{fmt(measured, 2)} ms",
            f"{x(r)} trivial pipe",
            f"<= {limit:g}x trivial pipe p50",
            at_most(r, limit),
        )

    for kind in ("sync", "async"):
        first = p(f"{STREAM_LABEL}, {kind} generator: first chunk")
        result.append(against_trivial(f"First chunk, {kind} generator pipe, p50", first, 1.5))
    action = p("Action call (trivial action)")
    result.append(against_trivial("Action call, p50", action, 1.0))
    for label, kind in ((COMPLETED, "no-op"), (COMPLETED_OPAQUE, "opaque")):
        title = f"/api/chat/completed (5 {kind} outlet filters), p50"
        result.append(against_trivial(title, p(label), 1.0))
    floor_start = starts.get("floor_daphne_restart_s")
    second = starts.get("make_run_second_s")
    daphne = starts.get("app_daphne_restart_s")
    result.append(
        Target(
            "Second `make run` to first 200 of /health",
            f"{fmt(floor_start, 2)} s (daphne)",
            f"{fmt(second, 2)} s",
            x(_ratio(second, floor_start)) + " floor start",
            "< 2 s",
            None if second is None else second < 2.0,
        )
    )
    result.append(
        Target(
            "  daphne alone (set-up data dir) to first 200",
            f"{fmt(floor_start, 2)} s",
            f"{fmt(daphne, 2)} s",
            x(_ratio(daphne, floor_start)) + " floor start",
            "(proxy, < 2 s)",
            None if daphne is None else daphne < 2.0,
        )
    )
    server = memory.server_rss_mb if memory else None
    floor_rss = starts.get("floor_rss_mb")
    result.append(
        Target(
            "Server RSS after the run",
            f"{fmt(floor_rss, 0)} MB",
            f"{fmt(server, 0)} MB",
            x(_ratio(server, floor_rss)) + " floor",
            "< 150 MB",
            None if server is None else server < 150,
        )
    )
    if memory:
        pss = f", PSS {fmt(memory.workers_pss_mb, 0)} MB" if memory.workers_pss_mb else ""
        result.append(
            Target(
                "Workers' memory after the run",
                "-",
                f"{memory.workers} workers: RSS {fmt(memory.workers_rss_mb, 0)} MB{pss}",
                f"largest {fmt(memory.largest_worker_rss_mb, 0)} MB",
                "stated",
                None,
            )
        )
    return result


# Output


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _grid(header: list[str], body: list[list[str]], right_from: int = 1) -> list[str]:
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        out = [
            cell.ljust(width) if i < right_from else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return [line(header), rule, *(line(cells) for cells in body)]


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
    lines = _grid(header, body)
    notes = [f"{row.scenario}: {note}" for row in rows for note in row.notes]
    if any(row.truncated for row in rows):
        notes.append("* stopped at the phase time limit before reaching its count")
    return "\n".join(lines + (["", *notes] if notes else []))


def verdict(target: Target) -> str:
    if target.met is None:
        return "-" if target.target == "stated" or target.target.startswith("(") else "not measured"
    return "met" if target.met else "NOT MET"


def targets_table(found: list[Target]) -> str:
    header = ["Target (issue 10)", "Floor", "fnplatform", "Ratio", "Target", "Verdict"]
    body = [[t.measure, t.floor, t.fnplatform, t.ratio, t.target, verdict(t)] for t in found]
    return "\n".join(_grid(header, body, right_from=99))


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
            f"load:    {info['load_average']} (1/5/15-minute load average at start)",
            "server:  daphne, one process, SQLite + in-memory channel layer, client on loopback",
            "floor:   bench/floor on the same daphne and flags, the same client and keep-alive",
            f"counts:  warm-up {counts.warmup}, {counts.serial} requests at c=1, "
            f"{counts.concurrent} at c={counts.concurrency} (each side in {counts.rounds} "
            f"alternating batches), {counts.stream_runs} streams each "
            f"({counts.filtered_stream_runs} with stream filters), {counts.actions} action "
            "and completed calls",
        ]
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--timeout", type=float, default=420, help="stop after this many seconds (default 420)"
    )
    parser.add_argument(
        "--make-run",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time a second `make run` to its first 200 (default: on, off with --quick)",
    )
    return parser.parse_args(argv)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def run(args, counts: Counts, deadline: Deadline) -> dict:
    info, revision = machine(), commit()
    info["load_average"] = load_average()
    print(describe(info, revision, counts, args.quick), flush=True)
    print("executor: process (sandboxed workers, one set per function)", flush=True)
    app, floor = App(deadline), Floor(deadline)
    starts: dict = {}
    memory = None
    # Cleanup runs outside the event loop, so it happens on any exit, SIGTERM included.
    try:
        print(f"Preparing the app in {app.data_dir} ...", file=sys.stderr)
        app.migrate()
        key = app.fixtures("setup")["api_key"]
        starts["app_daphne_first_s"] = app.start()
        starts["floor_daphne_first_s"] = floor.start()
        print(f"app on {app.base_url}, floor on {floor.base_url}; measuring:", file=sys.stderr)
        out = asyncio.run(
            asyncio.wait_for(measure(app, floor, counts, key), timeout=deadline.remaining(900))
        )
        memory = memory_of(app.server.pid)
        floor_memory = memory_of(floor.server.pid)
        starts["floor_rss_mb"] = floor_memory.server_rss_mb if floor_memory else None
        starts |= restart_and_make_run(app, floor, counts, deadline)
    except BaseException:
        for server in (app, floor):
            print(f"{server.server.name} daphne log (last lines):\n{server.log()}", file=sys.stderr)
        raise
    finally:
        try:
            app.cleanup()
        finally:
            floor.cleanup()
    rows = list(out.values())
    found = targets(out, starts, memory)
    print(f"load:    {load_average()} (1/5/15-minute load average at the end)")
    print()
    print(targets_table(found))
    print()
    print(table(rows), flush=True)
    if "make_run_first_s" in starts:
        print(
            "\nFirst `make run` (fresh data dir) to the first 200: "
            f"{starts['make_run_first_s']:.2f} s"
        )
    if "make_run_error" in starts:
        print(f"\n`make run` could not be timed: {starts['make_run_error']}")
    if memory:
        print(
            f"Workers: {memory.workers} processes, RSS {memory.workers_rss_mb:.0f} MB in all "
            f"(largest {memory.largest_worker_rss_mb:.0f} MB); "
            f"{memory.other_processes} sandbox wrapper processes, {memory.other_rss_mb:.0f} MB"
        )
    return {
        "machine": info,
        "commit": revision,
        "quick": args.quick,
        "counts": asdict(counts),
        "startup": starts,
        "memory": asdict(memory) if memory else None,
        "targets": [asdict(t) | {"verdict": verdict(t)} for t in found],
        "results": [asdict(row) for row in rows],
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    counts = QUICK if args.quick else Counts()
    if args.make_run is not None:
        counts = replace(counts, make_run=args.make_run)
    # A SIGTERM unwinds like Ctrl-C, so daphne is stopped and the data dir removed.
    signal.signal(signal.SIGTERM, _terminate)
    deadline = Deadline(time.monotonic() + args.timeout)
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
