"""Import aliasing for plugin code: `open_webui.*` and the legacy layouts.

Open WebUI rewrites `from utils` / `from apps` / `from main` / `from config` in the
stored source text and saves the result. We never touch the source. Instead:

- A meta-path finder makes our compatibility package (functions/compat/open_webui)
  importable as the top-level `open_webui`, and serves the 0.3/0.4 layout
  `open_webui.apps.webui.<x>` as an alias of `open_webui.<x>` (same module object).
- Plugin modules get their own `__import__` (through their `__builtins__`), which
  maps the bare pre-0.3.17 names (`utils.misc`, `apps.webui.models.users`, `main`,
  `config`) onto `open_webui.*`. It is scoped to plugin code, so a real package
  named `utils` or `config` elsewhere in the server is never shadowed.

An `open_webui` module we don't provide fails with ModuleNotFoundError naming it.
"""

import builtins
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

COMPAT_DIR = Path(__file__).resolve().parent.parent / "compat"
ROOT = "open_webui"
LEGACY_PREFIX = "open_webui.apps.webui"
# Bare top-level names that Open WebUI's loader rewrote to open_webui.<name>.
LEGACY_TOP_LEVEL = frozenset({"utils", "apps", "main", "config"})


def canonical_name(fullname: str) -> str:
    """Return the open_webui module a (possibly legacy) open_webui name stands for."""
    if fullname == LEGACY_PREFIX:
        return ROOT
    if fullname.startswith(LEGACY_PREFIX + "."):
        return ROOT + fullname[len(LEGACY_PREFIX) :]
    return fullname


class _AliasLoader(importlib.abc.Loader):
    """Load a module by importing its canonical name and reusing that object."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec):  # default module creation
        return None

    def exec_module(self, module: ModuleType) -> None:
        # The import system returns sys.modules[name] after exec_module, so putting
        # the canonical object there makes both names refer to one module.
        sys.modules[module.__name__] = importlib.import_module(self.target)


class OpenWebUIFinder(importlib.abc.MetaPathFinder):
    """Find `open_webui` in the compat folder and alias its legacy paths."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != ROOT and not fullname.startswith(ROOT + "."):
            return None
        if fullname == ROOT:
            return importlib.machinery.PathFinder.find_spec(ROOT, [str(COMPAT_DIR)])
        canonical = canonical_name(fullname)
        if canonical == fullname:
            return None  # a regular submodule: the package's __path__ finds it
        if importlib.util.find_spec(canonical) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(canonical))


_FINDER = OpenWebUIFinder()


def install_finder() -> None:
    """Put the finder first on sys.meta_path (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def plugin_import_name(name: str, level: int) -> str:
    """Map a bare legacy module name used by plugin code onto open_webui."""
    if level == 0 and name.split(".", 1)[0] in LEGACY_TOP_LEVEL:
        return f"{ROOT}.{name}"
    return name


def _plugin_import(name, globals=None, locals=None, fromlist=(), level=0):
    mapped = plugin_import_name(name, level)
    if mapped == name:
        return builtins.__import__(name, globals, locals, fromlist, level)
    module = builtins.__import__(mapped, globals, locals, fromlist, level)
    if fromlist:
        return module
    # `import utils.misc` binds the name `utils`: hand back open_webui.utils so
    # attribute access (`utils.misc.x`) works as it did upstream.
    return sys.modules[f"{ROOT}.{name.split('.', 1)[0]}"]


def plugin_builtins() -> dict:
    """Return a builtins mapping for plugin modules, with the aliasing __import__."""
    scoped = dict(builtins.__dict__)
    scoped["__import__"] = _plugin_import
    return scoped
