"""Who a plugin is running for, so host-data shims can scope what they return.

The runtime sets the caller before each hook; each request runs in its own task
(and the executor copies the context into its threads), so callers never mix.

While a plugin's module loads (its import and `__init__`, in the save-time check
or in a worker) the scope is read-only: it belongs to the staff member who saved
that code (or the function's owner), as an ordinary user (their own records, never
everyone's), and host-data methods that write (anything not named get...) are
refused, naming the method.
"""

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from typing import Any

from functions.services.request import plugin_request

# The caller: a __user__ dict, or a function that finds it on first use (the saver of
# code that loads in an inline worker is looked up only if the code asks).
_caller: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "fnplatform_plugin_caller", default=None
)
# Which function's code is asking: a plugin may read its own source and valves, never
# another function's, whoever it runs for.
_function: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fnplatform_plugin_function", default=None
)
_read_only: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "fnplatform_plugin_read_only", default=False
)
# Who a module that loads in this context loads for (set by the inline worker and check).
_load_scope: contextvars.ContextVar[tuple[Any, str | None] | None] = contextvars.ContextVar(
    "fnplatform_plugin_load_scope", default=None
)


# The call's `__request__` data: what a shim given the plugin's request object uses.
_request: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "fnplatform_plugin_request", default=None
)


class ReadOnlyHostData(PermissionError):
    """A host-data method that writes was called while a plugin's module loads."""


def set_caller(
    user: dict[str, Any] | Callable[[], dict | None] | None,
    function_id: str | None = None,
    request: dict | None = None,
    *,
    read_only: bool = False,
) -> None:
    _caller.set(_scope(user, read_only))
    _function.set(function_id)
    _request.set(request)
    _read_only.set(read_only)


def _scope(user: Any, read_only: bool) -> Any:
    """The caller as stored; a read-only (loading) scope is never admin-wide: a module
    that loads when any user's call starts its worker must not get what its staff saver
    may see (and a token it kept past its load would be worth no more)."""
    if not read_only:
        return _Lazy(user) if callable(user) else user
    if callable(user):
        find = user
        return _Lazy(lambda: _not_admin(find()))
    return _not_admin(user)


def _not_admin(user: dict | None) -> dict | None:
    return None if user is None else {**user, "role": "user"}


def calling_origin() -> dict[str, Any] | None:
    """The plain data of the call's request, to hand on to a nested completion."""
    return _request.get()


def calling_request():
    """The `__request__` of the call in progress, rebuilt from the server's own copy
    (never from what a plugin sent back), or None."""
    return plugin_request(_request.get())


class _Lazy:
    """A caller found on first use, once."""

    def __init__(self, find: Callable[[], dict | None]) -> None:
        self.find, self.lock, self.done, self.value = find, threading.Lock(), False, None

    def get(self) -> dict | None:
        with self.lock:
            if not self.done:
                self.value, self.done = self.find(), True
        return self.value


def user_scope(user: Any) -> dict[str, Any] | None:
    """The __user__ dict (id, email, name, role) of a Django user, or None for nobody."""
    if user is None or not user.is_authenticated:
        return None
    return {
        "id": str(user.pk),
        "email": getattr(user, "email", ""),
        "name": user.get_full_name() or user.get_username(),
        "role": "admin" if user.is_staff else "user",
    }


def calling_function() -> str | None:
    """The id of the function whose call is in progress, or None."""
    return _function.get()


def caller() -> dict[str, Any] | None:
    """The __user__ dict of the call in progress, or None outside plugin calls."""
    user = _caller.get()
    return user.get() if isinstance(user, _Lazy) else user


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


# Module loading: read-only host data


def reads_only(method: str) -> bool:
    """Whether a host-data method (by its plugin-facing name) only reads."""
    return method.rsplit(".", 1)[-1].startswith("get")


def check_allowed(method: str) -> None:
    """Refuse a method that writes when the scope is read-only (a module loading)."""
    if _read_only.get() and not reads_only(method):
        raise ReadOnlyHostData(
            f"{method} is refused while a plugin's module loads (at import and in "
            "__init__, host data is read-only); call it from a hook instead"
        )


def set_load_scope(user: dict | Callable[[], dict | None] | None, function_id: str | None):
    """Say who modules loading in this context load for: the saver of their code."""
    _load_scope.set((user, function_id))


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """Run a module's import and `__init__` with read-only host data, for its saver
    (nobody when no load scope was set)."""
    user, function_id = _load_scope.get() or (None, None)
    tokens = (
        _caller.set(_scope(user, read_only=True)),
        _function.set(function_id),
        _read_only.set(True),
        _request.set(None),  # a module loads for no request
    )
    try:
        yield
    finally:
        _request.reset(tokens[3])
        _read_only.reset(tokens[2])
        _function.reset(tokens[1])
        _caller.reset(tokens[0])
