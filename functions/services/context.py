"""The per-call context and the one function that turns it into reserved arguments.

Open WebUI injects `__user__`, `__event_emitter__`, … by exact parameter name, and
spreads that logic over pipes, filters, actions and tools. Here it lives once:
`kwargs_for(handler, context)`. Differences from upstream, on purpose:
- a handler that takes `**kwargs` receives every reserved argument;
- `__user__` is a fresh dict per hook holding only that plugin's own user valves,
  so one filter can never read (or overwrite) another's.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any

from functions.services.signatures import accepted_names

Emitter = Callable[[dict], Awaitable[Any]]


@dataclass
class CallContext:
    """Everything a hook may be given, for one call; built fresh per request."""

    user: dict[str, Any]
    event_emitter: Emitter | None = None
    event_call: Emitter | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # `__request__` as plain data (functions.services.request.request_data); the
    # worker gives hooks it as a PluginRequest object.
    request: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    messages: list[dict] | None = None
    chat_id: str | None = None
    session_id: str | None = None
    message_id: str | None = None
    files: list[dict] = field(default_factory=list)
    task: str | None = None
    task_body: dict | None = None
    tools: dict[str, Any] = field(default_factory=dict)
    oauth_token: dict | None = None


# Each field `x` of CallContext is the reserved argument `__x__`, so the two can never
# drift apart; `__id__` (the function's or sub-action's id) is given per hook.
RESERVED_NAMES = (*(f"__{f.name}__" for f in fields(CallContext)), "__id__")


def reserved_values(context: CallContext, *, id: str, user_valves: Any = None) -> dict[str, Any]:
    """Return every reserved argument's value for one hook of one plugin."""
    values = {f"__{f.name}__": getattr(context, f.name) for f in fields(CallContext)}
    user = dict(context.user)
    if user_valves is not None:
        user["valves"] = user_valves
    else:
        user.pop("valves", None)
    return values | {"__user__": user, "__id__": id}


def kwargs_for(
    handler: Callable,
    context: CallContext,
    *,
    id: str,
    user_valves: Any = None,
    accepted: tuple[frozenset[str], bool] | None = None,
) -> dict[str, Any]:
    """Return the reserved keyword arguments this handler asks for (all with **kwargs).
    `accepted`: its accepted_names, when the caller has them already."""
    names, takes_kwargs = accepted or accepted_names(handler)
    values = reserved_values(context, id=id, user_valves=user_valves)
    if takes_kwargs:
        return values
    return {name: value for name, value in values.items() if name in names}
