"""The plugin contract at run time: how hooks are called and what they may return.

Classes and hooks (the loader picks the class in this order):
- `Pipe.pipe(body, …)` answers a chat; a manifold also has `pipes` (a list, or a
  sync or async method returning [{"id", "name"}]).
- `Filter.inlet(body, …) -> body`, `Filter.stream(event, …) -> event | None`,
  `Filter.outlet(body, …) -> body`, each optional, run in (Valves.priority, id) order.
- `Action.action(body, …)` runs when a message button is clicked.
Every hook may be sync or async. Hooks run in the function's own worker (the
executor seam, functions.services.executor), never in the server; sync hooks (and
sync generators, one item at a time) run in the worker's threads, never on its
event loop thread (module code and `__init__` run there, as in Open WebUI).

Arguments: the data argument by name (`body`, or `event` for stream; passed
positionally when the hook names it differently), plus the reserved names the
signature declares, or all of them when it takes **kwargs (functions.services.context).

Valves: the server sends each call its stored valves and the user's user valves as
data; the worker validates them with the plugin's own classes and runs the hook on
a shallow copy of its cached instance carrying those valves, so concurrent calls
with different valves never race on one shared object. Attributes a hook assigns
on `self` therefore last for that call only; mutable objects created in `__init__`
are shared, as upstream. `__user__["valves"]` holds only this plugin's UserValves.

What a pipe may return, and the arguments a hook is called with, are the plugin
contract both sides of the executor share (functions.services.plugin_contract).

Plugins get their data as arguments and never use the ORM: callers prepare
PluginCall objects (plain data: the load report, valves as dicts) beforehand,
outside the event loop's hot path.
"""

import logging
from collections.abc import AsyncIterator
from typing import Any

from functions.seam import PluginCall
from functions.services.context import CallContext
from functions.services.executor import get_executor
from functions.services.plugin_contract import Chunk

log = logging.getLogger(__name__)


class HookError(Exception):
    """A plugin hook raised; carries the function id and hook name."""

    def __init__(self, function_id: str, hook: str, error: BaseException) -> None:
        self.function_id, self.hook, self.error = function_id, hook, error
        super().__init__(f"{function_id}.{hook}: {error}")

    @property
    def message(self) -> str:
        return str(self.error) or type(self.error).__name__

    @property
    def described(self) -> str:
        """The message for a user, naming the function once ("Function x failed: ...")."""
        if self.message.startswith(f"Function {self.function_id} "):
            return self.message  # the executor's own messages name it already
        return f"Function {self.function_id} failed: {self.message}"


class FilterAbort(HookError):
    """An inlet filter refused the request; its message is for the user."""


def order_filters(filters: list[PluginCall]) -> list[PluginCall]:
    """Sort filters by (Valves.priority, id), as Open WebUI does for every hook."""
    return sorted(filters, key=lambda f: (f.priority, f.function_id))


async def call_hook(
    call: PluginCall,
    hook: str,
    data: Any,
    context: CallContext,
    *,
    data_name: str = "body",
    id: str | None = None,
    executor: Any = None,
) -> Any:
    """Call one hook of a plugin in its worker, with its data and reserved arguments.
    `executor` defaults to the configured one (tests pass their own)."""
    executor = executor or get_executor()
    return await executor.invoke(call, hook, data, context, data_name=data_name, id=id)


async def run_pipe(
    call: PluginCall, body: dict, context: CallContext, *, executor: Any = None
) -> AsyncIterator[Chunk]:
    """Call a pipe in its worker and yield its answer as chunks; raise HookError naming
    the function."""
    executor = executor or get_executor()
    try:
        async for chunk in executor.stream(call, "pipe", body, context):
            yield chunk
    except HookError:
        raise
    except Exception as exc:
        log.warning("Pipe %s failed: %s", call.function_id, exc)
        raise HookError(call.function_id, "pipe", exc) from exc


# Filters


async def fold_filters(
    filters: list[PluginCall],
    hook: str,
    body: dict,
    context: CallContext,
    *,
    abort: bool = False,
    **options: Any,
) -> dict:
    """Fold one body hook (`inlet` or `outlet`) over the filters in (priority, id) order:
    each gets what the one before returned (a non-dict return leaves the body as it
    was). A failing hook raises FilterAbort when `abort` (an inlet refuses the
    request), else it is reported to the user and the fold goes on without it."""
    for call in order_filters(filters):
        if not call.must_call(hook, body):
            continue
        try:
            result = await call_hook(call, hook, body, context, **options)
        except Exception as exc:
            if abort:
                raise FilterAbort(call.function_id, hook, exc) from exc
            await _report(call, hook, exc, context)
            continue
        body = result if isinstance(result, dict) else body
    return body


async def apply_inlet(
    filters: list[PluginCall], body: dict, context: CallContext, **options: Any
) -> dict:
    """The inlet chain; a raising inlet aborts with FilterAbort."""
    return await fold_filters(filters, "inlet", body, context, abort=True, **options)


async def apply_outlet(
    filters: list[PluginCall], body: dict, context: CallContext, **options: Any
) -> dict:
    """The outlet chain on the finished message; failures are reported, not swallowed."""
    return await fold_filters(filters, "outlet", body, context, **options)


async def _report(call: PluginCall, hook: str, exc: Exception, context: CallContext) -> None:
    log.error("Filter %s failed in %s: %s", call.function_id, hook, exc, exc_info=exc)
    if context.event_emitter is not None:
        message = f"Filter {call.name} failed in {hook}: {exc}"
        await context.event_emitter(
            {"type": "notification", "data": {"type": "warning", "content": message}}
        )


async def apply_stream(
    filters: list[PluginCall], event: dict, context: CallContext, **options: Any
) -> dict | None:
    """Pass one chunk through stream hooks; a falsy return drops it, a failure is reported."""
    for call in order_filters(filters):
        if not call.must_call("stream", event):
            continue
        try:
            result = await call_hook(call, "stream", event, context, data_name="event", **options)
        except Exception as exc:
            await _report(call, "stream", exc, context)
            continue
        if not result:
            return None
        event = result
    return event


async def run_action(
    call: PluginCall,
    body: dict,
    context: CallContext,
    *,
    sub_id: str | None = None,
    executor: Any = None,
) -> Any:
    """Call an action (or one of its sub-actions, as __id__); raise HookError on failure."""
    try:
        return await call_hook(
            call, "action", body, context, id=sub_id or call.function_id, executor=executor
        )
    except Exception as exc:
        log.warning("Action %s failed: %s", call.function_id, exc)
        raise HookError(call.function_id, "action", exc) from exc
