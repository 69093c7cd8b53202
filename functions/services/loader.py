"""Turn plugin source text into a loaded, checked plugin. Pure: no ORM, no cache, no pip.

Plugin code runs only in the sandboxed save-time check and in workers, never in
the server: the server works from the LoadReport this module writes.

`load_source(source, function_id=...)` executes the source into a fresh module
named `function_<id>` (registered in sys.modules while it is loaded, as Open WebUI
does), whose `__file__` is a real file holding exactly that source until the
LoadedFunction is closed. The class is chosen in Open WebUI's order (Pipe, then
Filter, then Action), instantiated with no arguments, and checked for the hooks
its kind needs. Any failure raises SourceError, a ValidationError with code
"invalid_source" that carries the exception type, message and source line.
"""

import __future__

import ast
import importlib.metadata
import inspect
import sys
import tempfile
import traceback
import types
import uuid
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from functions.services.frontmatter import parse_frontmatter, split_requirements
from functions.services.imports import install_finder, plugin_builtins
from functions.services.noops import noop_hooks
from functions.services.signatures import parameters
from valves.spec import ValvesSpec, describe_valves, valves_model

CLASS_ORDER = (("Pipe", "pipe"), ("Filter", "filter"), ("Action", "action"))
FILTER_HOOKS = ("inlet", "stream", "outlet")
OPEN_WEBUI_VERSION = "0.11.0"
MAX_ICON_CHARS = 64 * 1024
# Hooks from Open WebUI Pipelines that the function loader never calls.
PIPELINES_HOOKS = ("on_startup", "on_shutdown", "on_valves_updated")
# Names on PyPI that only install another distribution (`bs4` is beautifulsoup4's):
# met, unpinned, when that one is installed.
REQUIREMENT_ALIASES = {"bs4": "beautifulsoup4"}

install_finder()
# Plugin code is compiled as if it began with `from __future__ import annotations`:
# annotations stay strings and are never evaluated at load, so a hook annotated with a
# name its module never imports (`response: StreamingResponse`, imported inside the
# method) still loads. Pydantic resolves Valves annotations from the module as usual.
_LAZY_ANNOTATIONS = __future__.annotations.compiler_flag


class SourceError(ValidationError):
    """A plugin source that cannot be loaded; `detail` says exactly why and where."""

    def __init__(self, code: str, error_type: str, message: str, line: int | None = None):
        self.detail = {"code": code, "type": error_type, "message": message, "line": line}
        where = f" at line {line}" if line else ""
        super().__init__(f"{error_type}{where}: {message}", code="invalid_source")


REPORT_VERSION = 2


@dataclass
class LoadReport:
    """What the loader found in a source; stored on each revision as JSON.

    It is all the server knows of a plugin: its kind, hooks (sync, async, generator
    or async generator), the filter hooks that provably do nothing (noop_hooks, which
    the server never calls: functions.services.noops), manifold, toggle, file_handler,
    icon, sub-actions, the Valves/UserValves specs (valves.spec: JSON schema, fields,
    defaults, secrets), the default priority, its `name` attribute (a manifold's
    model-name prefix), requirements (declared, then implicit: the server adds those,
    with the modules they are for) and warnings.
    """

    kind: str
    class_name: str
    frontmatter: dict[str, str]
    requirements: list[str]
    required_open_webui_version: str | None
    manifold: bool = False
    toggle: bool = False
    file_handler: bool = False
    has_valves: bool = False
    has_user_valves: bool = False
    hooks: dict[str, str] = field(default_factory=dict)
    # Not a new REPORT_VERSION: a report without it calls every hook, as before.
    noop_hooks: list[str] = field(default_factory=list)
    sub_actions: list[dict] = field(default_factory=list)
    icon: str | None = None
    warnings: list[str] = field(default_factory=list)
    implicit_requirements: list[dict[str, str]] = field(default_factory=list)
    valves: dict[str, Any] | None = None
    user_valves: dict[str, Any] | None = None
    priority: int = 0
    name: str = ""
    version: int = REPORT_VERSION

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "LoadReport":
        """A stored report; keys a newer or older version has and this one lacks are
        ignored or defaulted."""
        data = data or {}
        names = {f for f in cls.__dataclass_fields__}
        known = {k: v for k, v in data.items() if k in names}
        known.setdefault("kind", "")
        known.setdefault("class_name", "")
        known.setdefault("frontmatter", {})
        known.setdefault("requirements", [])
        known.setdefault("required_open_webui_version", None)
        known.setdefault("version", 1)
        return cls(**known)


@dataclass(eq=False)
class LoadedFunction:
    """A plugin module and its instance, as a worker (or the save-time check) holds it."""

    function_id: str
    source: str
    sha256: str
    module: types.ModuleType
    instance: Any
    path: Path
    report: LoadReport
    previous_module: types.ModuleType | None = None
    closed: bool = False

    @property
    def valves_class(self) -> type[BaseModel] | None:
        return valves_model(self.instance, "Valves")

    @property
    def user_valves_class(self) -> type[BaseModel] | None:
        return valves_model(self.instance, "UserValves")

    def close(self) -> None:
        """Unregister the module and remove its source file."""
        if self.closed:
            return
        self.closed = True
        name = self.module.__name__
        if sys.modules.get(name) is self.module:
            if self.previous_module is not None:
                sys.modules[name] = self.previous_module
            else:
                del sys.modules[name]
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> "LoadedFunction":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def validate_report(data: Any) -> dict[str, Any]:
    """A report as the server may store it, checked field by field (the specs included).
    Raise ValueError for anything else."""
    try:
        report = TypeAdapter(LoadReport).validate_python(data)
        for spec in (report.valves, report.user_valves):
            if spec is not None:
                ValvesSpec.model_validate(spec)
    except PydanticValidationError as exc:
        raise ValueError(str(exc)) from None
    return report.as_dict()


def source_sha256(source: str) -> str:
    return sha256(source.encode("utf-8")).hexdigest()


def load_source(
    source: str,
    *,
    function_id: str = "plugin",
    source_dir: Path | None = None,
) -> LoadedFunction:
    """Execute, instantiate and check a plugin source. Raise SourceError on any failure.

    Call it only in a sandboxed process (the save-time check, a worker): it runs the
    plugin's code. Its requirements must be installed in this interpreter.
    """
    frontmatter = parse_frontmatter(source)
    requirements = _requirements(frontmatter)
    _check_requirements_installed(requirements)
    digest = source_sha256(source)
    path = _write_source(source, function_id, digest, source_dir)
    try:
        module, previous = _execute(source, function_id, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    loaded = LoadedFunction(function_id, source, digest, module, None, path, None, previous)  # type: ignore[arg-type]
    try:
        loaded.instance, kind, class_name = _instantiate(module, path)
        loaded.report = _report(loaded.instance, kind, class_name, frontmatter, requirements)
    except BaseException:
        loaded.close()
        raise
    return loaded


def check_source(
    source: str,
    *,
    function_id: str = "plugin",
    source_dir: Path | None = None,
) -> LoadReport:
    """Load a source only to check it; return its LoadReport."""
    with load_source(source, function_id=function_id, source_dir=source_dir) as loaded:
        return loaded.report


def source_requirements(source: str) -> list[str]:
    """The valid requirements a source's frontmatter declares (others are warnings)."""
    return _requirements(parse_frontmatter(source))


def static_kind(source: str) -> str | None:
    """The kind a source declares by its top-level classes, read without running it."""
    try:
        tree = ast.parse(source.lstrip("\ufeff"))
    except SyntaxError as exc:
        raise SourceError("syntax_error", type(exc).__name__, exc.msg or "", exc.lineno) from exc
    names = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    return next((kind for class_name, kind in CLASS_ORDER if class_name in names), None)


def _requirements(frontmatter: dict[str, str]) -> list[str]:
    return split_requirements(frontmatter.get("requirements", ""))[0]


def requirement_warnings(frontmatter: dict[str, str]) -> list[str]:
    """Staff-facing notes on frontmatter requirement entries that are not requirements."""
    _, invalid = split_requirements(frontmatter.get("requirements", ""))
    return [_ignored_note(entry) for entry in invalid]


def _ignored_note(entry: str) -> str:
    if "://" in entry or entry.startswith(("git+", "file:")):
        return (
            f"Ignored the requirement entry {entry[:80]!r}: packages are installed by name "
            "from the configured index (PIP_INDEX_URL, PIP_FIND_LINKS), never from a URL "
            "a plugin names, whose build step would run on the server."
        )
    return (
        f"Ignored the requirement entry {entry[:80]!r}: it is not a valid requirement, so "
        "it is not installed (as in Open WebUI)."
    )


def _check_requirements_installed(requirements: list[str]) -> None:
    """Refuse to run code whose requirements are not installed where it loads."""
    missing = [text for text in requirements if not requirement_satisfied(Requirement(text))]
    if missing:
        raise SourceError(
            "requirements_missing",
            "RequirementsNotInstalled",
            f"not installed: {', '.join(missing)}. Requirements are installed into the "
            "function's own environment in the background; the admin shows its status.",
        )


def requirement_satisfied(requirement: Requirement, path: list[str] | None = None) -> bool:
    """Whether a distribution installed on `path` (this interpreter's by default) meets
    the requirement; one excluded by its environment marker counts as met."""
    if requirement.marker is not None and not requirement.marker.evaluate():
        return True
    found = importlib.metadata.distributions(name=requirement.name, path=path or sys.path)
    found = next(iter(found), None)
    alias = REQUIREMENT_ALIASES.get(requirement.name.lower())
    if found is None and alias and not requirement.specifier:
        return requirement_satisfied(Requirement(alias), path)
    if found is None:
        return False
    return requirement.specifier.contains(found.version, prereleases=True)


def _write_source(source: str, function_id: str, digest: str, source_dir: Path | None) -> Path:
    """Write the exact source to a file of its own, so `__file__` is real while loaded."""
    folder = Path(source_dir or Path(tempfile.gettempdir()) / "fnplatform-plugins")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"function_{function_id}_{digest[:12]}_{uuid.uuid4().hex[:8]}.py"
    path.write_text(source, encoding="utf-8", newline="")
    return path


def _execute(source: str, function_id: str, path: Path):
    """Exec the source into a new module registered as function_<id>."""
    try:
        code = compile(source.lstrip("\ufeff"), str(path), "exec", flags=_LAZY_ANNOTATIONS)
    except SyntaxError as exc:
        raise SourceError("syntax_error", type(exc).__name__, exc.msg, exc.lineno) from exc
    module = types.ModuleType(f"function_{function_id}")
    module.__file__ = str(path)
    module.__builtins__ = plugin_builtins()  # type: ignore[attr-defined]
    previous = sys.modules.get(module.__name__)
    sys.modules[module.__name__] = module
    try:
        exec(code, module.__dict__)
    except BaseException as exc:
        _restore(module, previous)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise _error_from(exc, path, default_code="exec_error") from exc
    return module, previous


def _restore(module: types.ModuleType, previous: types.ModuleType | None) -> None:
    if sys.modules.get(module.__name__) is module:
        if previous is not None:
            sys.modules[module.__name__] = previous
        else:
            del sys.modules[module.__name__]


def _error_from(exc: BaseException, path: Path, *, default_code: str) -> SourceError:
    """Describe an exception raised by plugin code, with the plugin's own line."""
    line = _plugin_line(exc, path)
    message = str(exc) or repr(exc)
    code = default_code
    if isinstance(exc, ImportError):
        code = "import_error"
        message = _import_hint(exc, message)
    return SourceError(code, type(exc).__name__, message, line)


def _plugin_line(exc: BaseException, path: Path) -> int | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return frames[-1].lineno if frames else None


def _import_hint(exc: ImportError, message: str) -> str:
    name = getattr(exc, "name", None) or ""
    if not isinstance(exc, ModuleNotFoundError):
        return message
    if name.split(".")[0] == "open_webui":
        return f"{message} (fnplatform does not provide the Open WebUI module {name!r})"
    example = f", for example `requirements: {name}`" if "." not in name else ""
    return (
        f"{message}: neither fnplatform's plugin environment nor Open WebUI provides it. "
        "Declare the package that provides it in the frontmatter docstring (its name "
        f"on PyPI may differ from the module's){example}"
    )


def _instantiate(module: types.ModuleType, path: Path):
    """Pick the plugin class in Open WebUI's order and create its one instance."""
    for class_name, kind in CLASS_ORDER:
        cls = module.__dict__.get(class_name)
        if isinstance(cls, type):
            try:
                return cls(), kind, class_name
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                raise _error_from(exc, path, default_code="init_error") from exc
    hint = (
        " (this looks like a Tools file; tools are not supported yet)"
        if "Tools" in (module.__dict__)
        else ""
    )
    raise SourceError(
        "no_plugin_class",
        "NoPluginClass",
        "No Pipe, Filter or Action class found. A function defines class Pipe (a model), "
        f"class Filter (inlet/stream/outlet hooks) or class Action (a message button){hint}.",
    )


def _describe_valves(instance: Any, report: LoadReport) -> None:
    """Valves specs for the server's forms, and the default filter priority."""
    valves_cls = valves_model(instance, "Valves")
    report.valves = describe_valves(valves_cls)
    report.user_valves = describe_valves(valves_model(instance, "UserValves"))
    report.has_valves = report.valves is not None
    report.has_user_valves = report.user_valves is not None
    priority = getattr(getattr(instance, "valves", None), "priority", 0)
    report.priority = int(priority) if isinstance(priority, int | float) else 0


def _callable_kind(func: Any) -> str:
    if inspect.isasyncgenfunction(func):
        return "async generator"
    if inspect.iscoroutinefunction(func):
        return "async"
    if inspect.isgeneratorfunction(func):
        return "generator"
    return "sync"


def _report(instance, kind, class_name, frontmatter, requirements) -> LoadReport:
    report = LoadReport(
        kind=kind,
        class_name=class_name,
        frontmatter=frontmatter,
        requirements=requirements,
        required_open_webui_version=frontmatter.get("required_open_webui_version") or None,
        file_handler=bool(getattr(instance, "file_handler", False)),
        toggle=bool(getattr(instance, "toggle", False)),
    )
    _describe_valves(instance, report)
    name = getattr(instance, "name", "")
    report.name = name if isinstance(name, str) else ""
    {"pipe": _check_pipe, "filter": _check_filter, "action": _check_action}[kind](instance, report)
    report.icon = _icon(instance, frontmatter, report)
    report.warnings += requirement_warnings(frontmatter)
    report.warnings += _version_warnings(report.required_open_webui_version)
    report.warnings += [
        f"{hook}() is an Open WebUI Pipelines hook; functions never call it."
        for hook in PIPELINES_HOOKS
        if callable(getattr(instance, hook, None))
    ]
    return report


def _missing_hook(kind: str, needed: str) -> SourceError:
    return SourceError("missing_hook", "MissingHook", f"{kind} class has no {needed}")


def _check_pipe(instance: Any, report: LoadReport) -> None:
    if not callable(getattr(instance, "pipe", None)):
        raise _missing_hook("Pipe", "pipe() method")
    report.hooks["pipe"] = _callable_kind(instance.pipe)
    if hasattr(instance, "pipes"):
        report.manifold = True
        pipes = instance.pipes
        report.hooks["pipes"] = "list" if isinstance(pipes, list) else _callable_kind(pipes)
        if not isinstance(pipes, list) and not callable(pipes):
            raise SourceError(
                "missing_hook", "MissingHook", "Pipe.pipes must be a list or a method"
            )


def _check_filter(instance: Any, report: LoadReport) -> None:
    for hook in FILTER_HOOKS:
        func = getattr(instance, hook, None)
        if callable(func):
            report.hooks[hook] = _callable_kind(func)
            report.warnings += _first_argument_warning(hook, func)
    report.noop_hooks = noop_hooks(instance, report.hooks)
    if not report.hooks and report.toggle:
        # Open WebUI accepts it: its on/off state reaches other functions (a companion
        # pipe reads it from __metadata__["filter_ids"]), with nothing to run itself.
        report.warnings.append("This toggle filter has no inlet, stream or outlet hook.")
    elif not report.hooks:
        raise _missing_hook("Filter", "inlet(), stream() or outlet() method")


def _first_argument_warning(hook: str, func: Any) -> list[str]:
    """Filters receive their data by keyword (`body`, or `event` for stream)."""
    expected = "event" if hook == "stream" else "body"
    params = parameters(func)
    if params is None:
        return []
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if expected in params or takes_kwargs:
        return []
    return [f"{hook}() has no parameter named {expected!r}; it is passed by that name."]


def _check_action(instance: Any, report: LoadReport) -> None:
    if not callable(getattr(instance, "action", None)):
        raise _missing_hook("Action", "action() method")
    report.hooks["action"] = _callable_kind(instance.action)
    actions = getattr(instance, "actions", None)
    if actions is None:
        return
    if not isinstance(actions, list):
        report.warnings.append("Action.actions should be a list of {'id', 'name', 'icon_url'}")
        return
    for entry in actions:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            report.sub_actions.append(
                {k: entry.get(k) for k in ("id", "name", "icon_url") if entry.get(k) is not None}
            )
        else:
            report.warnings.append(f"Ignoring sub-action without a string id: {entry!r:.80}")


def _icon(instance: Any, frontmatter: dict[str, str], report: LoadReport) -> str | None:
    icon = frontmatter.get("icon_url") or getattr(instance, "icon_url", None)
    icon = icon or getattr(instance, "icon", None)
    if not isinstance(icon, str) or not icon:
        return None
    if len(icon) > MAX_ICON_CHARS:
        report.warnings.append("The icon is larger than 64 KiB and is not shown.")
        return None
    return icon


def _version_warnings(required: str | None) -> list[str]:
    if not required:
        return []
    try:
        newer = Version(required) > Version(OPEN_WEBUI_VERSION)
    except InvalidVersion:
        return [f"required_open_webui_version {required!r} is not a version number."]
    if newer:
        return [
            f"Written for Open WebUI {required}; fnplatform implements the "
            f"{OPEN_WEBUI_VERSION} plugin contract."
        ]
    return []
