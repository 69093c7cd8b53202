"""What a worker process may use, and how it is started: limits, environment, usage.

`Limits.apply` runs in the child before exec (its own session, a pids cgroup, the
sandbox uid, death with the server, rlimits); `worker_env` is the only environment a
plugin process gets; `process_usage` and `exit_reason` read and describe the process.
"""

import contextlib
import ctypes
import os
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from functions.workers import cgroups

ROOT = Path(__file__).resolve().parents[2]
# Only what a Python process needs: never the server's secrets, database or keys.
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME")
KILL_GRACE_SECONDS = 1.0
TAIL_BYTES = 16 * 1024


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
        elif self.processes:
            # Per uid, and ignored for root: the cgroup is the real cap there. Every
            # worker of a root server shares the sandbox uid, so the uid gets a budget
            # for many workers (threads count too); without a cgroup it is a coarse cap.
            count = self.processes * (64 if become is not None else 1)
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NPROC, (count, count))
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


PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_usage(pid: int | None) -> tuple[float, float] | None:
    """Resident memory (MB) and CPU time used (s) of a live process, from /proc.
    One read of its stat file: it is asked before every call."""
    if pid is None:
        return None
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        try:
            stat = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:
        return None
    fields = stat.rsplit(b")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    return int(fields[21]) * PAGE_MB, cpu  # rss (pages), as VmRSS counts it


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
