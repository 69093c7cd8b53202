"""Who a plugin is running for, so host-data shims can scope what they return.

The runtime sets the caller before each hook; each request runs in its own task
(and the executor copies the context into its threads), so callers never mix.
"""

import contextvars
from typing import Any

_caller: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "fnplatform_plugin_caller", default=None
)


def set_caller(user: dict[str, Any]) -> None:
    _caller.set(user)


def caller() -> dict[str, Any] | None:
    """The __user__ dict of the call in progress, or None outside plugin calls."""
    return _caller.get()


def caller_is_admin() -> bool:
    user = caller()
    return bool(user and user.get("role") == "admin")


def may_read_user(user_id: Any) -> bool:
    """Plugins see their caller's own record; admins' calls see everyone's."""
    user = caller()
    return user is not None and (caller_is_admin() or str(user.get("id")) == str(user_id))
