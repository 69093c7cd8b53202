"""The plugin environment: the packages plugin code may import without declaring them.

Open WebUI runs plugins inside its own environment, so community files import
fastapi, aiohttp, loguru, pandas, ... without listing them in `requirements`. We
give workers the light part of that set (requirements-plugins.txt, locked by
requirements-plugins.lock) in an environment of its own, not the server's:

- it is a venv whose interpreter is the server's, with a .pth file appending the
  server's site-packages, so what the server has (pydantic, httpx, ...) is shared
  and not installed twice, while the plugin set's own pins come first;
- workers and save-time checks run its interpreter (FNPLATFORM_PLUGIN_ENV); the
  server never imports it, and its pins (openai 2.x for plugins, say) cannot clash
  with the server's;
- each function's own requirement environment is layered over it in turn.

Paths are host paths: every host builds its own copy (`make run` does), like the
requirement environments.
"""

import site
import subprocess
import sys
import sysconfig
from pathlib import Path

from django.conf import settings

READY_MARK = ".fnplatform-ready"
SERVER_PTH = "_fnplatform_server.pth"


def root() -> Path:
    return Path(settings.FUNCTIONS_PLUGIN_ENV)


def ready() -> bool:
    """Whether this host has the plugin environment built."""
    return (root() / READY_MARK).exists()


def python() -> str:
    """The interpreter plugin processes without requirements of their own run.

    Without a built plugin environment it is the server's own interpreter: plugins
    then see only the server's packages (GET /health says so)."""
    return str(root() / "bin" / "python") if ready() else sys.executable


def env_dir(key: str) -> Path:
    """Where the requirement environment `key` lives on this host
    (functions.services.environments builds it)."""
    return Path(settings.FUNCTIONS_ENVS_DIR) / key[:24]


def env_python(key: str) -> str:
    return str(env_dir(key) / "bin" / "python")


def worker_python(key: str | None) -> str:
    """The interpreter plugin code with this requirement environment (or none) runs."""
    return env_python(key) if key else python()


def site_dir(env_root: Path) -> Path:
    """A venv's site-packages, in this interpreter's layout."""
    relative = Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)
    return env_root / relative


def server_sites() -> list[str]:
    return [path for path in site.getsitepackages() if Path(path).is_dir()]


def paths() -> list[str]:
    """The site directories a plugin process sees, in order (not its stdlib)."""
    own = [str(site_dir(root()))] if ready() else []
    return own + server_sites()


def layer(env_root: Path, under: list[str]) -> None:
    """Make a venv see `under` after its own packages (a .pth file of plain paths)."""
    folder = site_dir(env_root)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SERVER_PTH).write_text("".join(f"{path}\n" for path in under))


def build(target: Path, requirements: Path, constraints: Path | None) -> int:
    """(Re)build a plugin environment at `target` from a requirements file, pinned by
    constraints; return pip's exit status.

    Run from `make` (`python -m functions.services.plugin_env`), never from a request,
    and without Django's settings: it must not create a data dir. pip sees the
    server's packages through the layer and installs only what they lack."""
    (target / READY_MARK).unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--clear", str(target)], check=True
    )
    layer(target, server_sites())
    command = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    command += ["--disable-pip-version-check", "--no-input", "-r", str(requirements)]
    if constraints is not None and constraints.exists():
        command += ["-c", str(constraints)]
    done = subprocess.run(command, check=False)
    if done.returncode == 0:
        (target / READY_MARK).write_text(requirements.read_text())
    return done.returncode


if __name__ == "__main__":
    # python -m functions.services.plugin_env TARGET REQUIREMENTS [CONSTRAINTS]
    target, requirements, *rest = sys.argv[1:]
    sys.exit(build(Path(target), Path(requirements), Path(rest[0]) if rest else None))
