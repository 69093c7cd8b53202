"""Who a plugin is running for, so host-data shims can scope what they return.

The runtime sets the caller before each hook; each request runs in its own task
(and the executor copies the context into its threads), so callers never mix.
"""

import contextvars
from typing import Any

from functions.services.request import plugin_request

_caller: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "fnplatform_plugin_caller", default=None
)
# Which function's code is asking: a plugin may read its own source and valves, never
# another function's, whoever it runs for.
_function: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fnplatform_plugin_function", default=None
)


# The call's `__request__` data: what a shim given the plugin's request object uses.
_request: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "fnplatform_plugin_request", default=None
)


def set_caller(
    user: dict[str, Any], function_id: str | None = None, request: dict | None = None
) -> None:
    _caller.set(user)
    _function.set(function_id)
    _request.set(request)


def calling_origin() -> dict[str, Any] | None:
    """The plain data of the call's request, to hand on to a nested completion."""
    return _request.get()


def calling_request():
    """The `__request__` of the call in progress, rebuilt from the server's own copy
    (never from what a plugin sent back), or None."""
    return plugin_request(_request.get())


def calling_function() -> str | None:
    """The id of the function whose call is in progress, or None."""
    return _function.get()


def caller() -> dict[str, Any] | None:
    """The __user__ dict of the call in progress, or None outside plugin calls."""
    return _caller.get()


def caller_is_admin() -> bool:
    user = caller()
    return bool(user and user.get("role") == "admin")


def is_caller(user_id: Any) -> bool:
    """Whether a user id is the caller's own (writes go to the caller's record only)."""
    user = caller()
    return user is not None and str(user.get("id")) == str(user_id)


def may_read_user(user_id: Any) -> bool:
    """Plugins see their caller's own record; admins' calls see everyone's."""
    user = caller()
    return user is not None and (caller_is_admin() or str(user.get("id")) == str(user_id))
