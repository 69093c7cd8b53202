"""Mirrors the parts of open_webui.main that plugins import.

`generate_chat_completion(s)` run through fnplatform's runtime. `app` stands in
for Open WebUI's FastAPI application, which plugins reach for its `state`
(`Request(scope={"type": "http", "app": app})` to call upstream helpers outside a
request): `app.state.config` and `app.state.MODELS` are those of the call in
progress, exactly what its `__request__.app.state` holds (no secrets: see
functions.services.request). There is no application-wide state behind them, so
outside a call (at import, in `__init__`) reading them raises an AttributeError
that says so, and `getattr(app.state, "config", None)` gives None.
"""

from typing import Any

from functions.services import host
from functions.services.request import calling, url_path_for

from .utils.chat import generate_chat_completion, generate_chat_completions

__all__ = ["app", "generate_chat_completion", "generate_chat_completions"]


class NoCallInProgress(AttributeError):
    """`app.state` was read with no plugin call in progress."""


def _calling_request():
    # Set by the worker for each hook call; the server's own copy when shims run in it.
    return calling.get() or host.calling_request()


class _CallState:
    """`app.state`, resolved for the call in progress on every access."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        request = _calling_request()
        if request is None:
            raise NoCallInProgress(
                f"open_webui.main.app.state.{name} is only available while the plugin "
                "answers a call: fnplatform has no application-wide state (read it in a "
                "hook, not at import or in __init__)"
            )
        return getattr(request.app.state, name)

    def __repr__(self) -> str:
        return "<open_webui.main.app.state of the call in progress>"


class _App:
    """Open WebUI's FastAPI app as plugins use it: `state` and `url_path_for`."""

    state = _CallState()

    @staticmethod
    def url_path_for(name: str, /, **params: Any) -> str:
        return url_path_for(name, **params)

    def __repr__(self) -> str:
        return "<open_webui.main.app (fnplatform)>"


app = _App()
