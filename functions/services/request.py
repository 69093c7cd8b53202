"""`__request__`: what plugins read of the request they answer, as plain data.

Open WebUI hands hooks its FastAPI `Request`. Community code reads `headers`,
`cookies`, `url`, `base_url`, `method`, `query_params`, `client`, `state.user`,
and `app.state.config.<NAME>` / `app.state.MODELS`, and passes the object on to
`generate_chat_completion(request, ...)`. Plugin code runs in workers, so the
server builds those parts as plain data once per request (`request_data`); the
data travels with each hook call (a worker is sent it in full once, then by its
`ref`), and the worker gives plugins a `PluginRequest`: the same names, as
attributes. A shim called with it over the host channel gets the server's own
copy of the call's request, never what the plugin sends back.

Never on it: credentials (the Authorization and Cookie headers, session, CSRF and
token cookies, API-key headers and query parameters), the server's secrets,
upstream API keys, other users' data.
"""

import contextvars
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# A header, cookie or query parameter whose name holds one of these never reaches a
# plugin: they carry credentials (the caller's, or the server's CSRF secret).
_SECRET_NAME_PARTS = (
    "authorization",
    "cookie",
    "session",
    "csrf",
    "xsrf",
    "token",
    "secret",
    "password",
    "passwd",
    "api-key",
    "api_key",
    "apikey",
    "x-key",
    "jwt",
)
_SECRET_QUERY_NAMES = frozenset({"key", "auth", "access_key", "signature", "sig", "code"})


def is_secret_name(name: str, *, extra: tuple[str, ...] = ()) -> bool:
    lowered = name.lower()
    return lowered in extra or any(part in lowered for part in _SECRET_NAME_PARTS)


def public_url(url: str) -> str:
    """A URL without credentials: no user:password@, no query string or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def origin(
    *,
    method: str,
    scheme: str,
    host: str,
    path: str,
    query_string: str,
    headers: list[tuple[str, str]],
    cookies: Mapping[str, str],
    client: tuple[str, int] | None,
    secret_cookies: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The request line, headers, cookies and client, with every credential left out."""
    query = [
        [k, v]
        for k, v in parse_qsl(query_string, keep_blank_values=True)
        if not is_secret_name(k, extra=tuple(_SECRET_QUERY_NAMES))
    ]
    kept_query = urlencode([(k, v) for k, v in query])
    base_url = f"{scheme}://{host}/"
    url = f"{scheme}://{host}{path}" + (f"?{kept_query}" if kept_query else "")
    secret = tuple(name.lower() for name in secret_cookies)
    return {
        "method": method.upper(),
        "url": url,
        "base_url": base_url,
        "headers": [[k.lower(), _header_value(k, v)] for k, v in headers if not is_secret_name(k)],
        "cookies": {k: v for k, v in cookies.items() if not is_secret_name(k, extra=secret)},
        "query_params": query,
        "client": list(client) if client else None,
    }


def _header_value(name: str, value: str) -> str:
    """A Referer can carry another page's query string (a token in it, say): not that."""
    return public_url(value) if name.lower() == "referer" else value


def origin_from_http(request) -> dict[str, Any]:
    """The origin of a Django HttpRequest (API views, WSGI or ASGI)."""
    from django.conf import settings

    headers = [(name, str(value)) for name, value in request.headers.items()]
    port = request.META.get("REMOTE_PORT")
    address = request.META.get("REMOTE_ADDR")
    return origin(
        method=request.method or "GET",
        scheme=request.scheme or "http",
        host=request.get_host(),
        path=request.path,
        query_string=request.META.get("QUERY_STRING", ""),
        headers=headers,
        cookies=request.COOKIES,
        client=(address, int(port) if str(port or "").isdigit() else 0) if address else None,
        secret_cookies=(settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME),
    )


def origin_from_scope(scope: Mapping[str, Any]) -> dict[str, Any]:
    """The origin of an ASGI (Channels) scope, for consumers."""
    from http.cookies import SimpleCookie

    from django.conf import settings

    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
    found = {k.lower(): v for k, v in headers}
    jar = SimpleCookie()
    jar.load(found.get("cookie", ""))
    server = scope.get("server") or ("localhost", None)
    host = found.get("host") or (f"{server[0]}:{server[1]}" if server[1] else server[0])
    scheme = scope.get("scheme") or ("ws" if scope.get("type") == "websocket" else "http")
    client = scope.get("client")
    return origin(
        method=scope.get("method") or "GET",
        scheme=scheme,
        host=host,
        path=scope.get("path") or "/",
        query_string=(scope.get("query_string") or b"").decode("latin-1"),
        headers=headers,
        cookies={k: m.value for k, m in jar.items()},
        client=(client[0], int(client[1] or 0)) if client else None,
        secret_cookies=(settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME),
    )


def request_data(
    *,
    origin: dict[str, Any] | None,
    user: dict[str, Any],
    config: dict[str, Any],
    models: dict[str, dict],
) -> dict[str, Any]:
    """The whole of `__request__` as plain data (what travels to workers)."""
    origin = origin or {}
    return {
        "ref": uuid.uuid4().hex,
        "method": origin.get("method", "POST"),
        "url": origin.get("url", ""),
        "base_url": origin.get("base_url", ""),
        "headers": origin.get("headers", []),
        "cookies": origin.get("cookies", {}),
        "query_params": origin.get("query_params", []),
        "client": origin.get("client"),
        "state": {"user": user},
        "app": {"state": {"config": config, "MODELS": models}},
    }


# The worker's side: the same data as attribute objects.


class URL(str):
    """A URL string with starlette's URL attributes (`str(url)` is the URL itself)."""

    @property
    def _parts(self):
        return urlsplit(str(self))

    scheme = property(lambda self: self._parts.scheme)
    netloc = property(lambda self: self._parts.netloc)
    hostname = property(lambda self: self._parts.hostname)
    port = property(lambda self: self._parts.port)
    path = property(lambda self: self._parts.path)
    query = property(lambda self: self._parts.query)
    fragment = property(lambda self: self._parts.fragment)
    is_secure = property(lambda self: self._parts.scheme in ("https", "wss"))


class Address(NamedTuple):
    host: str
    port: int


class MultiMapping(Mapping):
    """Read-only pairs, like starlette's Headers (case-insensitive) and QueryParams:
    `get` and `[]` give the last value, `getlist` every value."""

    def __init__(self, pairs: list, *, fold_case: bool = False) -> None:
        self._fold = fold_case
        self._pairs = [(self._key(k), v) for k, v in pairs]

    def _key(self, key: str) -> str:
        return key.lower() if self._fold else key

    def __getitem__(self, key: str) -> str:
        values = self.getlist(key)
        if not values:
            raise KeyError(key)
        return values[-1]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self._pairs))

    def __len__(self) -> int:
        return len(dict.fromkeys(k for k, _ in self._pairs))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and any(k == self._key(key) for k, _ in self._pairs)

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self._pairs if k == self._key(key)]

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._pairs!r})"


class Namespace:
    """Attributes from a dict; plugins may set their own (local to this hook)."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self.__dict__.update(values or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(sorted(self.__dict__))})"


# Open WebUI's route names that plugins resolve with `app.url_path_for(name, **params)`.
ROUTE_PATHS = {
    "get_file_content_by_id": "/api/v1/files/{id}/content",
    "get_file_by_id": "/api/v1/files/{id}",
}


def url_path_for(name: str, /, **params: Any) -> str:
    """The path of an Open WebUI route fnplatform serves; LookupError for any other."""
    if name not in ROUTE_PATHS:
        raise LookupError(f"No route exists for name {name!r} and params {sorted(params)}")
    return ROUTE_PATHS[name].format(**{k: str(v) for k, v in params.items()})


class App(Namespace):
    """`request.app`: its `state`, and `url_path_for` for the routes plugins link to."""

    def url_path_for(self, name: str, /, **params: Any) -> str:
        return url_path_for(name, **params)


# The `__request__` of the hook call in progress, set by the worker around each call:
# what `open_webui.main.app.state` resolves through.
calling: contextvars.ContextVar["PluginRequest | None"] = contextvars.ContextVar(
    "fnplatform_calling_request", default=None
)


class PluginRequest:
    """What a hook's `__request__` is: FastAPI's Request, as far as plugins read it."""

    # Shims called over the host channel see this and use the server's own copy.
    __fnplatform_request__ = True

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.ref = data.get("ref", "")
        self.method = data.get("method", "POST")
        self.url = URL(data.get("url", ""))
        self.base_url = URL(data.get("base_url", ""))
        self.headers = MultiMapping(data.get("headers") or [], fold_case=True)
        self.cookies = dict(data.get("cookies") or {})
        self.query_params = MultiMapping(data.get("query_params") or [])
        self.path_params: dict[str, Any] = {}
        client = data.get("client")
        self.client = Address(str(client[0]), int(client[1])) if client else None
        state = data.get("state") or {}
        self.state = Namespace({"user": _user_model(state.get("user") or {})})
        app_state = (data.get("app") or {}).get("state") or {}
        self.app = App(
            {
                "state": Namespace(
                    {
                        "config": Namespace(app_state.get("config") or {}),
                        "MODELS": dict(app_state.get("MODELS") or {}),
                    }
                )
            }
        )
        self.scope = {"type": "http", "method": self.method, "path": self.url.path}

    def __repr__(self) -> str:
        return f"<PluginRequest {self.method} {self.url.path}>"


def _user_model(data: dict[str, Any]) -> Any:
    """The caller as Open WebUI's UserModel (the compat one plugins import), else as data."""
    if not data:
        return None
    try:
        # By its plugin-facing name: the class plugins compare with and construct.
        from open_webui.models.users import UserModel
    except ImportError:  # the import finder is not installed (no plugin loaded here)
        return Namespace(data)
    return UserModel.model_validate(data)


def plugin_request(data: Mapping[str, Any] | None) -> PluginRequest | None:
    """The `__request__` object for a hook, from the data the call carried."""
    return PluginRequest(data) if data else None
