"""Write services for functions: the only code that creates or changes Function rows.

Every door (admin, API, HTMX pages, management commands) calls these. Errors:
ValidationError (code "invalid_source" with the loader's detail for code that
cannot load; field errors for bad input), PermissionDenied for callers who are not
active staff or lack the admin's permission for the step (fnplatform.permissions).
A rejected call changes nothing.
"""

import functools
import logging
import re
import time
from dataclasses import asdict

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from fnplatform.permissions import require_perm
from functions.models import Function, FunctionRevision, RequirementEnv, validate_function_id
from functions.selectors import code_saver
from functions.services import environments
from functions.services.executor import get_executor
from functions.services.frontmatter import parse_frontmatter
from functions.services.host import user_scope
from functions.services.implicit import function_requirements, implicit_requirements
from functions.services.loader import (
    LoadReport,
    SourceError,
    source_requirements,
    source_sha256,
    static_kind,
)

# A source that passed the check moments ago (the admin form checks it, then the
# save service checks it again) is not executed twice. Activation always reloads.
log = logging.getLogger(__name__)

_CHECK_TTL_SECONDS = 300
UNCHANGED = object()
_checked: dict[str, tuple[float, dict]] = {}
# The id code is checked under before it has one: no function can have it (it is no
# identifier), so the code counts as no function's own.
UNSAVED_ID = "unsaved-code"


def function_check_source(
    *, content: str, function_id: str = UNSAVED_ID, fresh: bool = False, user=None
):
    """Load a source to check it and return its LoadReport as a dict. Raise SourceError.

    Host data its module reads while it loads (import, `__init__`) is read-only and
    scoped to `user`, the staff member saving it; without one, to whoever saved that
    code of the function (its revision's author, else its creator).

    Requirements the server lacks get an environment, installed in the background;
    until it is ready the report is a provisional one (read without running the code),
    marked "pending".
    """
    env = environments.environment_for(function_requirements(content))
    key = env.key if env is not None else None
    if key is not None and not _environment_ready(env):
        return _pending_report(content, env)
    digest = source_sha256(content)
    saver = user_scope(user)
    # What the module read at load may depend on whom it loaded for.
    cache_key = f"{digest}:{saver['id'] if saver else ''}"
    cached = _checked.get(cache_key)
    if cached and not fresh and time.monotonic() - cached[0] < _CHECK_TTL_SECONDS:
        return cached[1]
    if saver is None:
        saver = functools.cache(lambda: code_saver(function_id, digest))
    result = _with_implicit(_run_check(content, function_id, key, saver), content)
    result["environment"] = key
    if len(_checked) > 256:
        _checked.clear()
    _checked[cache_key] = (time.monotonic(), result)
    return result


def _with_implicit(report: dict, content: str) -> dict:
    """The worker's report, plus the Open WebUI packages installed for it undeclared
    (read by the server from the source, never run; see functions.services.implicit)."""
    found = implicit_requirements(content)
    return report | {
        "requirements": [*report["requirements"], *(i.requirement for i in found)],
        "implicit_requirements": [asdict(i) for i in found],
        "warnings": [*report["warnings"], *(i.note() for i in found)],
    }


def _environment_ready(env: RequirementEnv) -> bool:
    return env.status == RequirementEnv.Status.READY and environments.ready_here(env.key)


def _pending_report(content: str, env: RequirementEnv) -> dict:
    kind = static_kind(content)
    if kind is None:
        raise SourceError(
            "no_plugin_class", "NoPluginClass", "No Pipe, Filter or Action class found."
        )
    frontmatter = parse_frontmatter(content)
    report = LoadReport(
        kind=kind,
        class_name=kind.capitalize(),
        frontmatter=frontmatter,
        requirements=source_requirements(content),
        required_open_webui_version=frontmatter.get("required_open_webui_version") or None,
        warnings=[
            f"Not loaded yet: its requirements are {environments.status_text(env)}. "
            "It is loaded and checked when they are installed, and can be activated then."
        ],
    )
    return _with_implicit(report.as_dict(), content) | {"environment": env.key, "pending": True}


def _run_check(content: str, function_id: str, env_key: str | None, saver) -> dict:
    """Load the source where plugin code runs (a throwaway sandboxed process), with its
    requirement environment. Never inside a database transaction: a check may take
    the whole FUNCTIONS_CHECK_TIMEOUT, and must not hold a write lock meanwhile."""
    return get_executor().check(content, function_id=function_id, environment=env_key, saver=saver)


def _meta_for(report: dict, meta: dict | None) -> dict:
    """Build Open WebUI's meta: description, the parsed frontmatter as manifest, toggle."""
    merged = dict(meta or {})
    frontmatter = report["frontmatter"]
    merged["description"] = merged.get("description") or frontmatter.get("description", "")
    merged["manifest"] = frontmatter
    if report["kind"] == "filter" and report["toggle"]:
        merged["toggle"] = True
    else:
        merged.pop("toggle", None)
    return merged


def _add_revision(function: Function, *, user, report: dict, note: str) -> FunctionRevision:
    number = (function.revisions.aggregate(n=Max("number"))["n"] or 0) + 1
    revision = FunctionRevision.objects.create(
        function=function,
        number=number,
        content=function.content,
        sha256=source_sha256(function.content),
        author=user if user is not None and user.is_authenticated else None,
        note=note[:255],
        load_result=report,
    )
    function.current_revision = revision
    function.save(update_fields=["current_revision"])
    return revision


def _clean_timeout(value) -> float | None:
    """A call deadline in seconds, or None for the server default."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValidationError({"call_timeout": ["Enter a number of seconds."]}) from None
    if not 0.1 <= seconds <= 24 * 3600:
        raise ValidationError({"call_timeout": ["Between 0.1 s and 24 hours, or empty."]})
    return seconds


def _clean_group(value) -> str:
    """A trust group name (a slug), or "" for workers of the function's own."""
    group = (value or "").strip().lower()
    if group and not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", group):
        raise ValidationError(
            {"trust_group": ["Letters, digits, '-' and '_' only (at most 64), or empty."]}
        )
    return group


def _clean_id(value: str) -> str:
    function_id = (value or "").strip().lower()
    try:
        validate_function_id(function_id)
    except ValidationError as exc:
        raise ValidationError({"id": exc.messages}) from exc
    if Function.objects.filter(id=function_id).exists():
        raise ValidationError({"id": [f"A function with id {function_id!r} already exists."]})
    return function_id


def function_create(
    *,
    user,
    id: str,
    name: str = "",
    content: str,
    meta: dict | None = None,
    note: str = "Created",
    is_active: bool = False,
    is_global: bool = False,
    call_timeout: float | None = None,
    trust_group: str = "",
) -> Function:
    """Create a function from source that loads, with its first revision."""
    require_perm(user, "functions.add_function")
    function_id = _clean_id(id)
    # Checked before the transaction: the check may take seconds and must hold no lock.
    report = function_check_source(content=content, function_id=function_id, user=user)
    name = (name or "").strip() or report["frontmatter"].get("title") or function_id
    function = Function(
        id=function_id,
        name=name[:255],
        type=report["kind"],
        content=content,
        meta=_meta_for(report, meta),
        # Code waiting for its requirements cannot run yet: it starts switched off
        # (the report's warning says so) and staff activate it once installed.
        is_active=is_active and not report.get("pending"),
        is_global=is_global,
        created_by=user,
        environment_id=report.get("environment"),
        call_timeout=_clean_timeout(call_timeout),
        trust_group=_clean_group(trust_group),
    )
    function.full_clean(exclude=["current_revision"], validate_unique=False)
    with transaction.atomic():
        if Function.objects.filter(id=function_id).exists():  # created meanwhile
            raise ValidationError({"id": [f"A function with id {function_id!r} already exists."]})
        function.save(force_insert=True)
        _add_revision(function, user=user, report=report, note=note)
    return function


def function_update(
    *,
    user,
    function: Function,
    name: str | None = None,
    content: str | None = None,
    meta: dict | None = None,
    note: str = "",
    call_timeout: float | object | None = UNCHANGED,
    trust_group: str | object = UNCHANGED,
) -> Function:
    """Change name, meta, source or deadline; new source is checked and becomes a new
    revision. The new code is checked before any transaction opens."""
    require_perm(user, "functions.change_function")
    checked = None
    # Against the stored code: the admin's form has already put the new code on `function`.
    stored = Function.objects.filter(pk=function.pk).values_list("content", flat=True).first()
    if content is not None and content != stored:
        checked = function_check_source(content=content, function_id=function.id, user=user)
    with transaction.atomic():
        function = _update(user, function, name, content, meta, note, call_timeout, checked)
        if trust_group is not UNCHANGED:
            function.trust_group = _clean_group(trust_group)
            function.save(update_fields=["trust_group", "updated_at"])
        return function


def _update(user, function, name, content, meta, note, call_timeout, checked) -> Function:
    function = Function.objects.select_for_update().get(pk=function.pk)
    changed_source = content is not None and content != function.content
    if changed_source:
        report = checked
        if report is None:  # changed by someone else since the check: check this one
            report = function_check_source(content=content, function_id=function.id, user=user)
    else:
        report = function.current_revision.load_result if function.current_revision else None
    if name is not None:
        if not name.strip():
            raise ValidationError({"name": ["The name cannot be empty."]})
        function.name = name.strip()[:255]
    if changed_source:
        function.content = content
        function.type = report["kind"]
        function.environment_id = report.get("environment")
        function.load_error, function.load_error_at = "", None
        if report.get("pending") and function.is_active:
            # The new code cannot run until its packages are installed: say so.
            function.is_active = False
            function.load_error = (
                "Switched off: the new code's requirements are being installed. "
                "Activate it again once they are."
            )
            function.load_error_at = timezone.now()
    if report is not None and (changed_source or meta is not None):
        function.meta = _meta_for(report, meta if meta is not None else function.meta)
    if call_timeout is not UNCHANGED:
        function.call_timeout = _clean_timeout(call_timeout)
    function.save()
    if changed_source:
        _add_revision(function, user=user, report=report, note=note or "Edited")
    return function


def function_rollback(*, user, function: Function, revision: FunctionRevision) -> Function:
    """Make an old revision's source current again, as a new revision."""
    require_perm(user, "functions.change_function")
    if revision.function_id != function.id:
        raise ValidationError("That revision belongs to another function.")
    function = Function.objects.get(pk=function.pk)
    if revision.content == function.content:
        raise ValidationError(f"Revision {revision.number} is already the current source.")
    return function_update(
        user=user,
        function=function,
        content=revision.content,
        note=f"Rollback to revision {revision.number}",
    )


def function_record_load_error(*, function: Function, error: str) -> None:
    """Store why the stored code failed to load; never deactivates the function."""
    Function.objects.filter(pk=function.pk).update(load_error=error, load_error_at=timezone.now())
    function.load_error, function.load_error_at = error, timezone.now()


def functions_environment_installed(*, environment: RequirementEnv, **signal) -> None:
    """Check each function waiting for an environment that finished installing; one
    failing does not stop the rest (receives environments.installed)."""
    for function in Function.objects.filter(environment=environment):
        try:
            function_environment_settled(function=function, environment=environment)
        except Exception:
            log.exception("Could not recheck %s after installing its requirements", function.id)


def function_environment_settled(*, function: Function, environment: RequirementEnv) -> None:
    """Its requirement environment finished installing: check the code now (storing the
    full report on its revision), or say why it cannot run."""
    function = Function.objects.get(pk=function.pk)
    if function.environment_id != environment.key:
        return  # its code changed meanwhile
    if environment.status != RequirementEnv.Status.READY:
        last = (environment.log.strip().splitlines() or ["no output"])[-1]
        function_record_load_error(
            function=function,
            error=f"Its requirements failed to install ({last[:300]}); see the pip log.",
        )
        return
    try:
        report = function_check_source(
            content=function.content, function_id=function.id, fresh=True
        )
    except SourceError as exc:
        function_record_load_error(function=function, error=exc.messages[0])
        return
    revision_store_report(function, report)
    Function.objects.filter(pk=function.pk).update(
        type=report["kind"],
        meta=_meta_for(report, function.meta),
        load_error="",
        load_error_at=None,
    )


def revision_store_report(function: Function, report: dict) -> None:
    """Store a fresh report on the function's current revision, if it is still the
    revision of the function's code."""
    revision = function.current_revision
    if revision is not None and revision.content == function.content:
        FunctionRevision.objects.filter(pk=revision.pk).update(load_result=report)
        revision.load_result = report


def function_set_active(*, user, function: Function, active: bool) -> Function:
    """Switch a function on or off; switching on reloads its code and refuses on failure."""
    require_perm(user, "functions.change_function")
    if active:
        try:
            report = function_check_source(
                content=function.content, function_id=function.id, fresh=True
            )
        except SourceError as exc:
            # Recorded outside any transaction of ours, so the reason survives the refusal.
            function_record_load_error(function=function, error=exc.messages[0])
            raise ValidationError(
                f"Cannot activate {function.id}: its code does not load. {exc.messages[0]}",
                code="invalid_source",
            ) from exc
        if report.get("pending"):
            raise ValidationError(
                f"Cannot activate {function.id} yet: {report['warnings'][0]}",
                code="requirements_pending",
            )
    with transaction.atomic():
        function = Function.objects.select_for_update().get(pk=function.pk)
        function.is_active = active
        if active:
            function.load_error, function.load_error_at = "", None
        function.save(update_fields=["is_active", "load_error", "load_error_at", "updated_at"])
    return function


@transaction.atomic
def function_set_global(*, user, function: Function, is_global: bool) -> Function:
    """Apply a filter or action to every model (or stop doing so)."""
    require_perm(user, "functions.change_function")
    function = Function.objects.select_for_update().get(pk=function.pk)
    function.is_global = is_global
    function.save(update_fields=["is_global", "updated_at"])
    return function


def function_delete(*, user, function: Function) -> None:
    """Delete a function with its revisions and valves."""
    require_perm(user, "functions.delete_function")
    function_id = function.id
    with transaction.atomic():
        Function.objects.filter(pk=function_id).delete()


def function_clone(*, user, function: Function, new_id: str, name: str = "") -> Function:
    """Create a copy of a function under a new id (inactive, with its meta)."""
    return function_create(
        user=user,
        id=new_id,
        name=name or f"{function.name} (copy)",
        content=function.content,
        meta={k: v for k, v in function.meta.items() if k not in {"manifest", "toggle"}},
        note=f"Cloned from {function.id}",
    )


def epoch(value) -> int:
    return int(value.timestamp()) if value else 0
