"""Requirement environments: a function's `requirements`, installed beside the server.

Each distinct requirement set gets one environment, named by a hash of the set
(functions asking for the same set share it). It is a venv whose interpreter is
the server's, with a .pth file appending the plugin environment's and the server's
site-packages (functions/services/plugin_env.py): what plugins already see
(fastapi, pydantic, httpx, ...) is not reinstalled, while a pin the environment
installs comes first on its path. pip runs in a background
thread, never inside a request and never against the server's own environment;
it honours PIP_INDEX_URL, PIP_FIND_LINKS and the other PIP_* variables, so an
air-gapped site can point it at a wheelhouse.

Requirements the plugin environment already satisfies need no environment.
"""

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.db import connections, transaction
from django.dispatch import Signal
from django.utils import timezone
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fnplatform.permissions import require_perm
from functions.models import RequirementEnv
from functions.services import plugin_env
from functions.services.loader import requirement_satisfied
from functions.services.plugin_env import env_dir, env_python

log = logging.getLogger(__name__)

READY_MARK = ".fnplatform-ready"
LOG_LIMIT = 64 * 1024
# One install at a time per server process: pip is heavy, and installs are rare.
_installer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="requirements")
# Sent with `environment` when an install on this host has finished, ready or failed.
# The functions waiting for it are the functions service's to recheck
# (functions.services.functions.functions_environment_installed, connected in
# functions.apps): environments sit below that service and never call up into it.
installed = Signal()


def needs_environment(requirements: list[str]) -> bool:
    """Whether any requirement is unmet by what plugin processes see without one."""
    path = plugin_env.paths()
    return not all(requirement_satisfied(Requirement(text), path) for text in requirements)


def env_key(requirements: list[str]) -> str:
    """The same requirement set, however written or ordered, gives the same key."""
    normal = sorted({_normal(text) for text in requirements})
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return hashlib.sha256("\n".join([python, *normal]).encode()).hexdigest()


def _normal(text: str) -> str:
    requirement = Requirement(text)
    requirement.name = canonicalize_name(requirement.name)
    return str(requirement)


def ready_here(key: str) -> bool:
    """Whether this host has the environment installed (each host keeps its own copy)."""
    return (env_dir(key) / READY_MARK).exists()


def environment_for(requirements: list[str]) -> RequirementEnv | None:
    """The environment a requirement set needs (created and scheduled if new), or None."""
    if not requirements or not needs_environment(requirements):
        return None
    key = env_key(requirements)
    env, created = RequirementEnv.objects.get_or_create(
        key=key, defaults={"requirements": sorted(requirements)}
    )
    missing_here = env.status == RequirementEnv.Status.READY and not ready_here(key)
    if created or _stalled(env) or missing_here:
        schedule_install(key)
    return env


def _stalled(env: RequirementEnv) -> bool:
    """Pending, or 'installing' with nobody installing it (its installer died)."""
    if env.status == RequirementEnv.Status.PENDING:
        return True
    return env.status == RequirementEnv.Status.INSTALLING and not _locked(env.key)


def schedule_install(key: str) -> None:
    """Install in the background once the surrounding transaction (if any) has committed."""
    transaction.on_commit(lambda: _installer.submit(_install_job, key))


def environment_reinstall(*, user, environment: RequirementEnv) -> None:
    """Staff asked to install again (after fixing an index, say)."""
    require_perm(user, "functions.change_function")
    env = environment
    RequirementEnv.objects.filter(pk=env.pk).update(status=RequirementEnv.Status.PENDING)
    with contextlib.suppress(FileNotFoundError):
        (env_dir(env.key) / READY_MARK).unlink()
    schedule_install(env.key)


def _install_job(key: str) -> None:
    try:
        install(key)
    except Exception:
        log.exception("Installing requirements environment %s failed", key)
    finally:
        # This thread lives on between installs: do not keep a connection open.
        connections.close_all()


@contextlib.contextmanager
def _install_lock(key: str) -> Iterator[bool]:
    """A host-wide lock per environment: two server processes never pip into one dir."""
    path = Path(settings.FUNCTIONS_ENVS_DIR) / f"{key[:24]}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def _locked(key: str) -> bool:
    with _install_lock(key) as acquired:
        return not acquired


def install(key: str) -> RequirementEnv:
    """Build the environment for `key` on this host, record the pip log, then recheck
    the functions waiting for it."""
    env = RequirementEnv.objects.get(pk=key)
    with _install_lock(key) as acquired:
        if not acquired:
            return env  # another process on this host is installing it
        if ready_here(key) and env.status != RequirementEnv.Status.READY:
            # Built here before (the database was reset or the row deleted): reuse it.
            _set(env, status=RequirementEnv.Status.READY, finished_at=timezone.now())
        elif ready_here(key):
            return env
        if env.status == RequirementEnv.Status.READY:
            # Installed on another host already: build this host's copy quietly.
            ok, output = _build(key, env.requirements)
            if not ok:
                log.error("Requirements %s failed to install here:\n%s", key, output[-4000:])
            return env
        _set(env, status=RequirementEnv.Status.INSTALLING, started_at=timezone.now(), log="")
        try:
            ok, output = _build(key, env.requirements)
        except Exception as exc:  # a full disk, say: staff must see it, not "installing"
            ok, output = False, f"the install could not run: {type(exc).__name__}: {exc}\n"
        status = RequirementEnv.Status.READY if ok else RequirementEnv.Status.FAILED
        _set(env, status=status, finished_at=timezone.now(), log=output[-LOG_LIMIT:])
    installed.send(sender=RequirementEnv, environment=env)
    return env


def _set(env: RequirementEnv, **fields) -> None:
    for name, value in fields.items():
        setattr(env, name, value)
    RequirementEnv.objects.filter(pk=env.pk).update(**fields)


def _build(key: str, requirements: list[str]) -> tuple[bool, str]:
    target = env_dir(key)
    shutil.rmtree(target, ignore_errors=True)  # a half-built one from a crash
    steps = [
        [sys.executable, "-m", "venv", "--without-pip", str(target)],
        [
            env_python(key),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            *requirements,
        ],
    ]
    output = []
    for number, command in enumerate(steps):
        if number == 1:
            plugin_env.layer(env_dir(key), plugin_env.paths())
        output.append(f"$ {' '.join(command)}\n")
        try:
            done = subprocess.run(
                command,
                env=_pip_env(),
                capture_output=True,
                text=True,
                timeout=settings.FUNCTIONS_PIP_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            output.append(f"timed out after {settings.FUNCTIONS_PIP_TIMEOUT:g} s\n")
            return False, "".join(output)
        output += [done.stdout, done.stderr]
        if done.returncode != 0:
            output.append(f"exited with status {done.returncode}\n")
            return False, "".join(output)
    (target / READY_MARK).write_text(key)
    return True, "".join(output)


def _pip_env() -> dict[str, str]:
    """pip's own settings pass through; the server's secrets do not (a package's
    build step is somebody else's code)."""
    from functions.workers.limits import SAFE_ENV

    env = {key: os.environ[key] for key in SAFE_ENV if key in os.environ}
    env |= {key: value for key, value in os.environ.items() if key.startswith("PIP_")}
    env |= {"PYTHONNOUSERSITE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return env


def status_text(env: RequirementEnv | None) -> str:
    """One line for staff: what the function's requirements are waiting on."""
    if env is None:
        return "no extra packages needed"
    if env.status == RequirementEnv.Status.READY and not ready_here(env.key):
        return "installing on this host"
    return {
        RequirementEnv.Status.PENDING: "waiting to install",
        RequirementEnv.Status.INSTALLING: "installing",
        RequirementEnv.Status.READY: "installed",
        RequirementEnv.Status.FAILED: "install failed: see the pip log",
    }[env.status]
