"""A pids cgroup per worker, where the machine lets us make one.

RLIMIT_NPROC counts processes per user and is ignored for root, so a server
running as root (containers often do) cannot cap a fork loop with it. A pids
cgroup caps the processes of one worker whatever the uid, and also lists them,
so a worker's children are killed with it even if they left its process group.
Where no pids cgroup is writable, workers fall back to RLIMIT_NPROC.
"""

import atexit
import contextlib
import itertools
import logging
import os
import signal
import time
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
_ids = itertools.count()


@cache
def pids_base() -> Path | None:
    """This server's own pids cgroup directory (made once per server process), or None."""
    for candidate in _own_pids_cgroups():
        base = candidate / f"fnplatform-{os.getpid()}"
        try:
            base.mkdir(exist_ok=True)
            probe = base / "probe"
            probe.mkdir(exist_ok=True)
            usable = (probe / "pids.max").exists()
            probe.rmdir()
        except OSError:
            continue
        if usable:
            _remove_stale(candidate)
            atexit.register(_remove_base, base)
            return base
        with contextlib.suppress(OSError):
            base.rmdir()
    log.info("No writable pids cgroup: worker child processes are capped by RLIMIT_NPROC")
    return None


def _remove_base(base: Path) -> None:
    for child in base.iterdir():
        if child.is_dir():
            kill_and_remove(child)
    with contextlib.suppress(OSError):
        base.rmdir()


def _own_pids_cgroups() -> list[Path]:
    """Where this process sits in the pids hierarchy: v1 (pids:/path) or v2 (0::/path)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if "pids" in controllers.split(","):
            found.append(CGROUP_ROOT / "pids" / relative)
        elif controllers == "" and _v2_has_pids(CGROUP_ROOT / relative):
            found.append(CGROUP_ROOT / relative)
    return found


def _v2_has_pids(directory: Path) -> bool:
    try:
        return "pids" in (directory / "cgroup.subtree_control").read_text().split()
    except OSError:
        return False


def _remove_stale(parent: Path) -> None:
    """Remove cgroups left by servers that died without cleaning up."""
    for stale in parent.glob("fnplatform-*"):
        pid = stale.name.removeprefix("fnplatform-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            for child in stale.iterdir():
                if child.is_dir():
                    kill_and_remove(child)
            with contextlib.suppress(OSError):
                stale.rmdir()


def create(max_pids: int) -> Path | None:
    """A fresh cgroup allowing at most max_pids processes, or None if unavailable."""
    base = pids_base()
    if base is None or max_pids <= 0:
        return None
    group = base / f"w{next(_ids)}"
    try:
        group.mkdir()
        (group / "pids.max").write_text(str(max_pids))
    except OSError:
        log.warning("Could not create the pids cgroup %s", group, exc_info=True)
        return None
    return group


def enter(group: Path) -> None:
    """Move the calling process into a group (run in a child before exec)."""
    fd = os.open(group / "cgroup.procs", os.O_WRONLY)
    try:
        os.write(fd, str(os.getpid()).encode())
    finally:
        os.close(fd)


def members(group: Path) -> list[int]:
    try:
        return [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def kill_and_remove(group: Path) -> None:
    """Kill every process in the group, then remove it (a group must be empty to go)."""
    for _ in range(50):
        pids = members(group)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    with contextlib.suppress(OSError):
        group.rmdir()


def at_limit(group: Path | None) -> bool:
    """Whether the group ever refused a fork (pids.events counts each refusal)."""
    if group is None:
        return False
    try:
        return int((group / "pids.events").read_text().split()[-1]) > 0
    except (OSError, ValueError, IndexError):
        return False
