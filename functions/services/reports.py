"""What the server knows of a function's code: its stored load report, and where its
code runs. Sync; the server never loads plugin code to find any of this out.

Whether a function may run is two checks: its quarantine (cached per generation, see
fnplatform.state) and its requirement environment on this host (a file check, made
on every call: an install finishing moves no generation).
"""

from django.core.exceptions import ValidationError

from fnplatform import state
from functions.models import Function
from functions.seam import PluginCall
from functions.services import environments
from functions.services.functions import (
    function_check_source,
    function_record_load_error,
    revision_store_report,
)
from functions.services.health import quarantine_reason
from functions.services.implicit import function_requirements
from functions.services.loader import (
    REPORT_VERSION,
    LoadReport,
    SourceError,
    source_sha256,
)


class PluginUnavailable(ValidationError):
    """A function's stored code or valves cannot be used right now; says why."""


def function_report(function: Function) -> LoadReport:
    """The load report of a function's current code. A report stored by an older
    version of fnplatform (or for other code) is written anew by the sandboxed check."""
    revision = function.current_revision
    data = revision.load_result if revision is not None else None
    current = revision is not None and revision.content == function.content
    if current and data and (data.get("version", 1) >= REPORT_VERSION or data.get("pending")):
        return LoadReport.from_dict(data)
    try:
        data = function_check_source(content=function.content, function_id=function.id)
    except SourceError as exc:
        function_record_load_error(function=function, error=exc.messages[0])
        raise PluginUnavailable(
            f"Function {function.id} cannot be loaded: {exc.messages[0]}", code="unavailable"
        ) from exc
    revision_store_report(function, data)
    return LoadReport.from_dict(data)


def worker_group(function: Function) -> str:
    """Which workers run a function: its own, or those of the trust group staff named."""
    group = (function.trust_group or "").strip()
    return f"group:{group}" if group else f"function:{function.id}"


def plugin_target(
    function: Function, report: LoadReport | None = None, *, runnable: bool = False, **fields
) -> PluginCall:
    """A PluginCall for a function's current code, without valves unless given.
    `runnable`: refuse (PluginUnavailable) a quarantined function, or one whose
    requirements are not installed on this server yet."""
    if runnable:
        require_runnable(function)
    report = report if report is not None else function_report(function)
    return PluginCall(
        function.id,
        report,
        source=function.content,
        sha256=source_sha256(function.content),
        name=function.name,
        environment=function.environment_id,
        timeout=function.call_timeout,
        group=worker_group(function),
        **fields,
    )


def require_runnable(function: Function) -> None:
    """Refuse (PluginUnavailable) a quarantined function, or one not ready on this host."""
    refuse_quarantined(function)
    require_environment_here(function.id, function.environment_id, function.content)


def refuse_quarantined(function: Function) -> None:
    reason = state.cached("quarantine", function.id, lambda: quarantine_reason(function))
    if reason:
        raise PluginUnavailable(reason, code="quarantined")


def require_environment_here(function_id: str, environment: str | None, content: str) -> None:
    """Refuse (PluginUnavailable) a function whose requirement environment this host lacks,
    and have it installed. On the event loop, raise state.Miss instead: installing
    touches the database."""
    if not environment or environments.ready_here(environment):
        return
    if state.on_loop():
        raise state.Miss(f"the environment of {function_id}")
    # This server lacks the environment another one built: install its own copy.
    environments.environment_for(function_requirements(content))
    raise PluginUnavailable(
        f"Function {function_id} is not ready: its requirements are being installed "
        "on this server; try again in a minute.",
        code="unavailable",
    )
