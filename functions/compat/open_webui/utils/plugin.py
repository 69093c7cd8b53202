"""Mirrors open_webui.utils.plugin: frontmatter, import rewriting, and loading plugin code.

A plugin may load only its *own* code: `load_function_module_by_id` looks the id
up through the compat `Functions` table, which gives a plugin its own function's
source and no other's, and runs it in the plugin's own process (a fresh module and
instance, as upstream's loader makes); any other id is refused with PermissionError.
Toolkits have no table in fnplatform yet, so `load_tool_module_by_id` runs only the
source it is given. Nothing here writes: upstream's loader switches a function off
when its code fails and pip-installs requirements at load; fnplatform installs
requirements when code is saved, so `install_frontmatter_requirements` raises
NotImplementedError saying so.
"""

import sys
import types
from typing import Any

from functions.services.frontmatter import parse_frontmatter
from functions.services.imports import plugin_builtins

from ..models.functions import Functions

_REWRITES = (
    ("from utils", "from open_webui.utils"),
    ("from apps", "from open_webui.apps"),
    ("from main", "from open_webui.main"),
    ("from config", "from open_webui.config"),
)
_cache: dict[str, tuple[str, Any]] = {}


def extract_frontmatter(content: str) -> dict[str, str]:
    """The frontmatter of a plugin source (first line `\"\"\"`, then `key: value` lines)."""
    return parse_frontmatter(content)


def replace_imports(content: str) -> str:
    """Rewrite pre-0.3.17 imports (`from utils...`) to `open_webui`, as upstream's loader
    did. fnplatform needs none of it (it aliases those names), but scripts call it."""
    for old, new in _REWRITES:
        content = content.replace(old, new)
    return content


def _own_source(function_id: str, what: str) -> str:
    row = Functions.get_function_by_id(function_id)
    if row is None or row.content is None:
        raise PermissionError(
            f"{what}({function_id!r}) is refused: a plugin may load only its own function's code"
        )
    return row.content


def load_function_module_by_id(function_id: str, content: str | None = None):
    """Run the calling function's own code again: (instance, type, frontmatter)."""
    from functions.services.loader import load_source

    source = _own_source(function_id, "load_function_module_by_id")
    loaded = load_source(content if content is not None else source, function_id=function_id)
    # The instance lives on; its source file and sys.modules entry go (the running
    # module stays registered under its name, and nothing is left behind in /tmp).
    loaded.close()
    return loaded.instance, loaded.report.kind, loaded.report.frontmatter


def get_function_module_from_cache(request: Any, function_id: str, load_from_db: bool = True):
    """The calling function's own instance, made once per version of its code."""
    source = _own_source(function_id, "get_function_module_from_cache")
    cached = _cache.get(function_id)
    if cached is None or (load_from_db and cached[0] != source):
        instance, _, _ = load_function_module_by_id(function_id, content=source)
        cached = _cache[function_id] = (source, instance)
    return cached[1]


def load_tool_module_by_id(tool_id: str, content: str | None = None):
    """Run a toolkit's source in this process: (Tools instance, frontmatter)."""
    if content is None:
        raise LookupError(
            f"load_tool_module_by_id({tool_id!r}): fnplatform has no saved toolkits yet; "
            "pass the toolkit's source as content"
        )
    module = types.ModuleType(f"tool_{tool_id}")
    module.__builtins__ = plugin_builtins()  # type: ignore[attr-defined]
    previous = sys.modules.get(module.__name__)
    sys.modules[module.__name__] = module
    try:
        exec(compile(content.lstrip("\ufeff"), f"<tool {tool_id}>", "exec"), module.__dict__)
        if not hasattr(module, "Tools"):
            raise Exception("No Tools class found in the module")
        return module.Tools(), extract_frontmatter(content)
    except BaseException:
        if previous is not None:
            sys.modules[module.__name__] = previous
        else:
            sys.modules.pop(module.__name__, None)
        raise


def install_frontmatter_requirements(requirements: str) -> None:
    raise NotImplementedError(
        "install_frontmatter_requirements is not provided by fnplatform: declare "
        "requirements in the function's frontmatter, and they are installed when it is saved"
    )
