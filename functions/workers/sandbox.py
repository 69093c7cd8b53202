"""How a plugin process is started: under bubblewrap, as an unprivileged uid, seeing
only what it needs.

A sandboxed process gets its own user, pid, ipc, uts and cgroup namespaces and a
filesystem of read-only binds: /usr (and the /lib, /lib64, /bin symlinks), the few
/etc files DNS and TLS need, the project code, the server's interpreter and venv, and
the requirement environments. It writes only in a fresh scratch directory of its own
(/scratch: its HOME, its data dir and where its plugin sources go; /tmp is a part of
it). It keeps the network (plugins call LLM APIs) but not the server's data dir,
database, key files or /proc. When the server is root, the process also runs as
FUNCTIONS_SANDBOX_UID (uid and gid), so even a way out of the namespaces meets files
it may not read.

Why bubblewrap rather than our own unshare/mount code: it is small, has no daemon, is
well kept and reviewed because Flatpak runs every desktop app through it, and it gets
the fiddly parts (mount ordering, /proc and /dev, no_new_privs, death with its parent)
right. The only mount code here stages bind sources for the sandbox uid (see
`_stage`), because bubblewrap rightly opens its sources as the user it runs as.

Why a fixed uid (64123 by default) rather than a created system user: nothing needs
a name for it (no /etc/passwd entry, no useradd on start, nothing to differ between
hosts or containers with a read-only /etc), and being fixed it can be matched by
firewall rules (`iptables -m owner --uid-owner 64123`). It must be unused on the host.

`status()` says which protections this host gives (probed once); FUNCTIONS_SANDBOX
decides what happens when some are missing: "auto" uses what there is and warns,
"required" refuses to start plugin processes, "off" runs them unsandboxed.
"""

import atexit
import contextlib
import ctypes
import functools
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.workers import cgroups

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
INSIDE = "/scratch"  # the scratch dir, as the sandboxed process sees it
SCRATCH_PREFIX = "fnplatform-sandbox-"
# What DNS, TLS and name lookups read; bound read-only where present.
ETC_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/ssl")
ETC_FILES += ("/etc/ca-certificates", "/etc/host.conf", "/etc/gai.conf")
USR_LINKS = ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
PROTECTIONS = ("bubblewrap", "user_namespaces", "uid_drop", "pids_cgroup")
PROBE_TIMEOUT = 30

_CLONE_NEWNS = 0x00020000
_MS_BIND, _MS_REC, _MS_PRIVATE = 4096, 16384, 1 << 18
_libc = ctypes.CDLL(None, use_errno=True)  # loaded here: a forked child must not dlopen


class SandboxUnavailable(RuntimeError):
    """FUNCTIONS_SANDBOX is "required" and a protection is missing; the message names it."""


@dataclass(frozen=True)
class Protection:
    name: str
    on: bool
    detail: str


@dataclass(frozen=True)
class Status:
    """What this host gives plugin processes, and how they will be started."""

    mode: str
    protections: tuple[Protection, ...]
    bwrap: str | None = None  # run under this bubblewrap; None: unsandboxed
    uid: int | None = None  # drop to this uid and gid first; None: keep the server's

    def off(self) -> list[Protection]:
        return [p for p in self.protections if not p.on]

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "ok": not self.off(),
            "protections": {p.name: {"on": p.on, "detail": p.detail} for p in self.protections},
        }


def settings_key() -> tuple[str, str, int]:
    from django.conf import settings

    return (
        settings.FUNCTIONS_SANDBOX,
        settings.FUNCTIONS_BWRAP or shutil.which("bwrap") or "bwrap",
        settings.FUNCTIONS_SANDBOX_UID,
    )


def status() -> Status:
    """This host's sandbox status for the current settings (probed once per setting)."""
    return _probe(*settings_key())


@functools.cache
def _probe(mode: str, bwrap: str, uid: int) -> Status:
    _remove_stale_scratch()
    cgroup = cgroups.pids_base()
    pids = Protection(
        "pids_cgroup",
        cgroup is not None,
        f"a pids cgroup per process under {cgroup}"
        if cgroup
        else "no writable pids cgroup: processes are capped by RLIMIT_NPROC per uid only",
    )
    if mode not in ("auto", "required", "off"):
        raise ValueError(f"FNPLATFORM_SANDBOX must be auto, required or off, not {mode!r}")
    if mode == "off":
        off = "FNPLATFORM_SANDBOX=off"
        result = Status(mode, (*_all_off(off, off, off), pids))
    else:
        result = _probe_bwrap(mode, bwrap, uid, pids)
    _log(result)
    return result


def _all_off(bwrap: str, userns: str, uid: str) -> tuple[Protection, ...]:
    return (
        Protection("bubblewrap", False, bwrap),
        Protection("user_namespaces", False, userns),
        Protection("uid_drop", False, uid),
    )


def _probe_bwrap(mode: str, bwrap: str, uid: int, pids: Protection) -> Status:
    try:
        version = subprocess.run(
            [bwrap, "--version"], capture_output=True, text=True, timeout=PROBE_TIMEOUT
        )
    except (OSError, subprocess.SubprocessError) as exc:
        missing = f"{bwrap} cannot run ({type(exc).__name__}: {exc}); install bubblewrap"
        return Status(mode, (*_all_off(missing, "needs bubblewrap", "needs bubblewrap"), pids))
    found = Protection("bubblewrap", True, f"{bwrap} ({version.stdout.strip()})")
    root = os.geteuid() == 0
    error = _try_sandbox(bwrap, uid if root else None)
    if error is None:
        userns = Protection("user_namespaces", True, "user, pid, ipc, uts, cgroup, mount")
        drop = (
            f"plugin processes run as uid and gid {uid} (the server is root)"
            if root
            else f"not needed: the server runs as uid {os.geteuid()}, not root"
        )
        return Status(mode, (found, userns, Protection("uid_drop", True, drop), pids), bwrap, uid)
    if root and _try_sandbox(bwrap, None) is None:
        userns = Protection("user_namespaces", True, "user, pid, ipc, uts, cgroup, mount")
        drop = Protection("uid_drop", False, f"cannot switch to uid {uid}: {error}")
        return Status(mode, (found, userns, drop, pids), bwrap, None)
    hint = _userns_hint()
    protections = (found, Protection("user_namespaces", False, f"{error}{hint}"))
    protections += (Protection("uid_drop", False, "needs the sandbox's namespaces"), pids)
    return Status(mode, protections)


def _try_sandbox(bwrap: str, uid: int | None) -> str | None:
    """Start a sandboxed interpreter the way workers start; None if it worked, else why."""
    probe = Status("auto", (), bwrap, uid)
    box = Box(probe, python=sys.executable)
    try:
        done = subprocess.run(
            box.command([sys.executable, "-c", "import os; print(os.getuid())"]),
            env=box.env({"PATH": "/usr/bin:/bin"}),
            cwd=box.cwd,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            preexec_fn=box.enter,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        box.close()
    if done.returncode != 0:
        return (done.stderr.strip() or f"bubblewrap exited with {done.returncode}")[-500:]
    return None


def _userns_hint() -> str:
    for path, bad in (
        ("/proc/sys/kernel/unprivileged_userns_clone", "0"),
        ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1"),
        ("/proc/sys/user/max_user_namespaces", "0"),
    ):
        with contextlib.suppress(OSError):
            if Path(path).read_text().strip() == bad:
                return f" ({path.removeprefix('/proc/sys/').replace('/', '.')} is {bad})"
    return ""


def _log(result: Status) -> None:
    if result.mode == "off":
        log.warning(
            "FNPLATFORM_SANDBOX=off: plugin code runs UNSANDBOXED, as the server's user, "
            "able to read everything the server can. Use this only to debug."
        )
        return
    off = result.off()
    if not off:
        log.info("Plugin sandbox: every protection is on (%s)", result.bwrap)
        return
    names = "; ".join(f"{p.name} OFF ({p.detail})" for p in off)
    if result.mode == "required":
        log.error("FNPLATFORM_SANDBOX=required: plugin processes will not start: %s", names)
    else:
        log.warning("Plugin sandbox degraded, these protections are off: %s", names)


def require() -> Status:
    """The current status; raise SandboxUnavailable when "required" finds a gap."""
    current = status()
    if current.mode == "required" and current.off():
        names = ", ".join(f"{p.name} ({p.detail})" for p in current.off())
        raise SandboxUnavailable(
            f"FNPLATFORM_SANDBOX=required, and these protections are off: {names}; "
            "plugin code is not run"
        )
    return current


@dataclass
class Box:
    """One plugin process's sandbox: its scratch dir, command, environment and preexec."""

    status: Status
    python: str = sys.executable
    scratch: Path = field(init=False)  # on the host; removed by close()

    def __post_init__(self) -> None:
        # Named after this server's pid, so a server that died leaves nothing for long.
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
        _open_scratch.add(self.scratch)
        home = self.scratch / "home"
        for folder in (home, home / "tmp", home / "plugin_sources"):
            folder.mkdir(mode=0o700)
        self.sources = self._sources()
        if self.status.uid is not None:
            self.scratch.chmod(0o711)  # the sandbox uid passes through to its own parts
            (self.scratch / "stage").mkdir(mode=0o755)
            for number in range(len(self.sources)):
                (self.scratch / "stage" / str(number)).mkdir()
            for folder in (home, home / "tmp", home / "plugin_sources"):
                os.chown(folder, self.status.uid, self.status.uid)

    @property
    def sandboxed(self) -> bool:
        return self.status.bwrap is not None

    @property
    def home(self) -> str:
        """The scratch dir as the process sees it: its HOME and its FNPLATFORM_DATA_DIR."""
        return INSIDE if self.sandboxed else str(self.scratch / "home")

    @property
    def source_dir(self) -> str:
        return f"{self.home}/plugin_sources"

    @property
    def cwd(self) -> str:
        return str(ROOT)

    def _sources(self) -> list[str]:
        """Directories bound read-only at their own (resolved) path: the code dirs,
        outermost first, then the environments dir if they do not already show it."""
        from django.conf import settings

        wanted = {ROOT, Path(sys.prefix), Path(sys.base_prefix), Path(self.python).parent.parent}
        wanted.add(Path(settings.FUNCTIONS_PLUGIN_ENV))  # requirement environments layer on it
        real = sorted({os.path.realpath(path) for path in wanted if path.exists()})
        code = [p for p in real if not any(_inside(p, other) for other in real if other != p)]
        self.masks = self._masks(code)
        envs = os.path.realpath(settings.FUNCTIONS_ENVS_DIR)
        shown = any(_inside(envs, c) for c in code) and not any(
            _inside(envs, m) for m in self.masks
        )
        self.with_envs = os.path.isdir(envs) and not shown
        return code + ([envs] if self.with_envs else [])

    @staticmethod
    def _masks(code: list[str]) -> list[str]:
        """The data dir (and a SQLite database's dir) where a bound dir would show them."""
        from django.conf import settings

        hidden = {os.path.realpath(settings.DATA_DIR)}
        database = settings.DATABASES["default"]
        if database["ENGINE"].endswith("sqlite3") and str(database["NAME"]).startswith("/"):
            hidden.add(os.path.dirname(os.path.realpath(database["NAME"])))
        return sorted(h for h in hidden if any(_inside(h, source) for source in code))

    def command(self, argv: list[str]) -> list[str]:
        """The command that runs argv (interpreter and arguments) in this sandbox.
        Descriptors passed with pass_fds keep their numbers inside."""
        if not self.sandboxed:
            return list(argv)
        args = [self.status.bwrap or "bwrap", "--unshare-user", "--unshare-pid"]
        args += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
        # --new-session: no way back to the server's terminal (TIOCSTI).
        args += ["--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev"]
        home = self.scratch / "home"
        # /tmp first: code or a venv that lives under /tmp (a clone there, say) is then
        # bound on top of the private /tmp, not hidden by it.
        args += ["--bind", str(home / "tmp"), "/tmp"]
        args += ["--ro-bind", "/usr", "/usr"]
        for link in USR_LINKS:
            if os.path.islink(link):
                args += ["--symlink", os.readlink(link), link]
        for path in ETC_FILES:
            args += ["--ro-bind-try", path, path]
        binds = [self._bind(number, source) for number, source in enumerate(self.sources)]
        split = len(binds) - int(self.with_envs)
        code, envs = binds[:split], binds[split:]
        for bind in code:
            args += ["--ro-bind", *bind]
        for mask in self.masks:  # small and read-only: no memory to fill there
            args += ["--size", "4096", "--tmpfs", mask]
        for bind in envs:  # after the masks: it may live in the data dir
            args += ["--ro-bind", *bind]
        for mask in self.masks:
            args += ["--remount-ro", mask]
        args += ["--bind", str(home), INSIDE]
        return [*args, "--chdir", str(ROOT), "--", *argv]

    def _bind(self, number: int, source: str) -> tuple[str, str]:
        staged = self.scratch / "stage" / str(number)
        return (str(staged) if self.status.uid is not None else source, source)

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """The process's environment: base, with its home, data dir and temp dir moved to
        the scratch dir."""
        env = dict(base)
        env |= {"HOME": self.home, "FNPLATFORM_DATA_DIR": self.home}
        env["TMPDIR"] = "/tmp" if self.sandboxed else f"{self.home}/tmp"
        env |= {"PYTHONDONTWRITEBYTECODE": "1"}  # the code is read-only in there
        if self.sandboxed:
            env |= {"USER": "sandbox", "LOGNAME": "sandbox"}  # there is no passwd entry
        return env

    def enter(self) -> None:
        """In the child, before exec, as root: stage the bind sources, then become the
        sandbox uid. Nothing to do for an unprivileged server."""
        uid = self.status.uid
        if uid is None or not self.sandboxed:
            return
        _stage([(src, str(self.scratch / "stage" / str(n))) for n, src in enumerate(self.sources)])
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)

    def preexec(self, limits, group: Path | None) -> Callable[[], None]:
        """The preexec_fn: limits.apply, becoming the sandbox uid after the cgroup join."""
        become = self.enter if self.sandboxed and self.status.uid is not None else None
        return functools.partial(limits.apply, group, become=become)

    def returncode(self, code: int | None) -> int | None:
        """bubblewrap exits 128+N when its child died of signal N: report it as Popen does."""
        if self.sandboxed and code is not None and 128 < code < 128 + 65:
            return -(code - 128)
        return code

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)
        _open_scratch.discard(self.scratch)


def prepare(*, python: str = sys.executable) -> Box:
    """A fresh sandbox for one plugin process. Raise SandboxUnavailable when required."""
    return Box(require(), python=python)


def payload_pid(pid: int | None, sandboxed: bool) -> int | None:
    """The host pid of the interpreter bubblewrap started (bwrap, its pid-1 reaper, then
    the command), so its memory and CPU can be read."""
    if not sandboxed or pid is None:
        return pid
    for _ in range(2):
        children = _children(pid)
        if not children:
            return None
        pid = min(children)
    return pid


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _stage(pairs: list[tuple[str, str]]) -> None:
    """In a private mount namespace of this child, bind each source on a directory the
    sandbox uid can reach: bubblewrap, running as that uid, opens its sources as it, and
    the interpreter or the environments may sit under directories only root may enter
    (/root, a 0700 data dir). Nothing leaves the child: the namespace is private."""
    if _libc.unshare(_CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
    if _libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "making the mounts private failed")
    for source, target in pairs:
        if _libc.mount(source.encode(), target.encode(), None, _MS_BIND | _MS_REC, None) != 0:
            raise OSError(ctypes.get_errno(), f"binding {source} failed")


# Scratch dirs of this process's live sandboxes: removed when it exits (a server
# stopped with SIGTERM does not stop its workers one by one first).
_open_scratch: set[Path] = set()


@atexit.register
def _remove_open_scratch() -> None:
    for scratch in list(_open_scratch):
        shutil.rmtree(scratch, ignore_errors=True)


def _remove_stale_scratch() -> None:
    """Remove scratch dirs of servers that died without cleaning up."""
    pattern = re.compile(rf"{SCRATCH_PREFIX}(\d+)-")
    for stale in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        match = pattern.match(stale.name)
        if match and not Path(f"/proc/{match[1]}").exists():
            shutil.rmtree(stale, ignore_errors=True)
