"""Upstream connections: the OpenAI-compatible endpoints whose models users chat with.

Two sources, merged by `connection_all()` into plain `UpstreamConnection` values
that everything at run time uses (no ORM after that point):
- `Connection` rows staff manage through the write services here (admin, API);
- Open WebUI's environment variables, read at call time: `OPENAI_API_BASE_URLS`
  and `OPENAI_API_KEYS`, semicolon-separated and paired by index (falling back to
  `OPENAI_API_BASE_URL` / `OPENAI_API_KEY`, as Open WebUI does).

Errors: write services raise PermissionDenied for non-staff callers and
ValidationError for bad input. Every HTTP call to an upstream raises
`UpstreamError` (HTTP status >= 400, unreachable, timed out, unusable answer);
`upstream_models()` never raises it: a failing upstream becomes an entry in
`UpstreamListing.errors` and the others are still listed.
"""

import asyncio
import functools
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from chat.models import Connection, validate_base_url
from chat.selectors import connection_list
from fnplatform import state
from fnplatform.permissions import require_staff
from valves.crypto import SecretsDecryptError, decrypt_json, encrypt_json

logger = logging.getLogger(__name__)

# How long a model listing is reused, and the cap on one upstream's listing time
# (Open WebUI's AIOHTTP_CLIENT_TIMEOUT_MODEL_LIST default): a dead upstream must
# not hold up the models page for a chat-sized timeout.
MODELS_CACHE_SECONDS = 60.0
MODEL_LIST_TIMEOUT = 10.0
DEFAULT_TIMEOUT = 60.0


class UpstreamError(Exception):
    """An upstream call that failed; `status` is the upstream's HTTP status when it answered."""

    def __init__(self, message: str, *, status: int | None = None, connection_id: str = ""):
        super().__init__(message)
        self.message = message
        self.status = status
        self.connection_id = connection_id


@dataclass(frozen=True)
class UpstreamConnection:
    """One upstream as run-time code sees it: id is "db:<pk>" or "env:<index>"."""

    id: str
    name: str
    base_url: str
    api_key: str = field(default="", repr=False)
    model_ids: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        # A tuple keeps the value hashable: it is the model-listing cache key.
        object.__setattr__(self, "model_ids", tuple(self.model_ids))

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def allows(self, model_id: str) -> bool:
        return not self.model_ids or model_id in self.model_ids


@dataclass
class UpstreamListing:
    """Every reachable upstream's models (first connection wins an id), one error per failure."""

    models: list[dict[str, Any]]
    errors: list[dict[str, str]]
    connections: list[UpstreamConnection] = field(default_factory=list, repr=False)

    def connection(self, connection_id: str) -> UpstreamConnection:
        """Return the listed connection with this id; raise KeyError."""
        for connection in self.connections:
            if connection.id == connection_id:
                return connection
        raise KeyError(connection_id)


# Write services


def _require_staff(user) -> None:
    try:
        require_staff(user)
    except PermissionDenied:
        raise PermissionDenied("Only staff members can manage connections.") from None


def _encrypted(api_key: str) -> str:
    return encrypt_json({"key": api_key}) if api_key else ""


def connection_create(
    *,
    user,
    name: str,
    base_url: str,
    api_key: str | None = None,
    model_ids: list[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    is_active: bool = True,
) -> Connection:
    """Register an upstream; the API key is stored encrypted."""
    _require_staff(user)
    connection = Connection(
        name=name,
        base_url=base_url,
        api_key_encrypted=_encrypted((api_key or "").strip()),
        model_ids=[] if model_ids is None else model_ids,
        timeout=timeout,
        is_active=is_active,
    )
    connection.full_clean()
    connection.save(force_insert=True)
    return connection


def connection_update(
    *,
    user,
    connection: Connection,
    name: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    clear_api_key: bool = False,
    model_ids: list[str] | None = None,
    timeout: float | None = None,
    is_active: bool | None = None,
) -> Connection:
    """Change the given fields; an empty or None api_key keeps the stored key."""
    _require_staff(user)
    new_key = (api_key or "").strip()
    if new_key and clear_api_key:
        message = "Either enter a new API key or clear it, not both."
        raise ValidationError({"api_key": ValidationError(message, code="ambiguous_api_key")})
    changes = {"name": name, "base_url": base_url, "timeout": timeout, "is_active": is_active}
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection.pk)
        for attr, value in changes.items():
            if value is not None:
                setattr(connection, attr, value)
        if model_ids is not None:
            connection.model_ids = model_ids
        if clear_api_key or new_key:
            connection.api_key_encrypted = _encrypted(new_key)
        connection.full_clean()
        connection.save()
    return connection


def connection_delete(*, user, connection: Connection) -> None:
    """Remove an upstream."""
    _require_staff(user)
    Connection.objects.filter(pk=connection.pk).delete()


# Run-time views of the connections


def connection_api_key(connection: Connection) -> str:
    """Return the decrypted API key ("" when none). Raise SecretsDecryptError."""
    if not connection.api_key_encrypted:
        return ""
    return str(decrypt_json(connection.api_key_encrypted).get("key") or "")


def upstream_for(connection: Connection) -> UpstreamConnection:
    """Return the run-time value of a stored connection (its key decrypted)."""
    return UpstreamConnection(
        id=f"db:{connection.pk}",
        name=connection.name,
        base_url=connection.base_url.rstrip("/"),
        api_key=connection_api_key(connection),
        model_ids=tuple(connection.model_ids or ()),
        timeout=float(connection.timeout),
    )


def _env_items(*names: str) -> list[str]:
    """Split the first non-empty variable on ";", keeping empty items so indexes pair up."""
    for name in names:
        value = os.environ.get(name, "")
        if value.strip():
            return [item.strip() for item in value.split(";")]
    return []


def _env_timeout() -> float:
    # Open WebUI's own variable for its upstream calls, so one .env serves both.
    try:
        value = float(os.environ.get("AIOHTTP_CLIENT_TIMEOUT", "") or DEFAULT_TIMEOUT)
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


ENV_NAMES = (
    "OPENAI_API_BASE_URLS",
    "OPENAI_API_BASE_URL",
    "OPENAI_API_KEYS",
    "OPENAI_API_KEY",
    "AIOHTTP_CLIENT_TIMEOUT",
)


def env_connections() -> list[UpstreamConnection]:
    """Return the upstreams configured by Open WebUI's environment variables (read at
    each call; parsed again only when they changed)."""
    return list(_env_connections(tuple(os.environ.get(name) for name in ENV_NAMES)))


@functools.lru_cache(maxsize=8)
def _env_connections(_values: tuple[str | None, ...]) -> tuple[UpstreamConnection, ...]:
    # `_values` (the variables' values) is the cache key; the parsing reads os.environ.
    return tuple(_parse_env_connections())


def _parse_env_connections() -> list[UpstreamConnection]:
    urls = _env_items("OPENAI_API_BASE_URLS", "OPENAI_API_BASE_URL")
    keys = _env_items("OPENAI_API_KEYS", "OPENAI_API_KEY")
    timeout = _env_timeout()
    upstreams = []
    for index, url in enumerate(urls):
        try:
            validate_base_url(url)
        except ValidationError:
            logger.warning("Ignoring OPENAI_API_BASE_URLS entry %d: %r is not a URL.", index, url)
            continue
        upstreams.append(
            UpstreamConnection(
                id=f"env:{index}",
                name=urlsplit(url).netloc,
                base_url=url.rstrip("/"),
                api_key=keys[index] if index < len(keys) else "",
                timeout=timeout,
            )
        )
    return upstreams


def connection_all() -> list[UpstreamConnection]:
    """Return the active stored upstreams, then the environment's (read each time: no
    database, and tests change it)."""
    return [*_stored().upstreams, *env_connections()]


def stored_connection_urls() -> list[str]:
    """The base URLs of the active stored connections, unreadable keys or not."""
    return list(_stored().urls)


@dataclass(frozen=True)
class _Stored:
    """The active Connection rows as run-time values (keys decrypted, in memory only)."""

    upstreams: tuple[UpstreamConnection, ...]
    urls: tuple[str, ...]


def _stored() -> _Stored:
    # Cached per database generation (fnplatform.state): answers on the event loop.
    return state.cached("connections", None, _load_stored)


def _load_stored() -> _Stored:
    upstreams, urls = [], []
    for connection in connection_list(active=True):
        urls.append(connection.base_url.rstrip("/"))
        try:
            upstreams.append(upstream_for(connection))
        except SecretsDecryptError:
            # One unreadable key must not take every other upstream down with it.
            logger.error("Skipping connection %s: its API key cannot be decrypted.", connection.pk)
    return _Stored(tuple(upstreams), tuple(urls))


# Model listing


@dataclass(frozen=True)
class _Fetched:
    at: float
    models: list[dict[str, Any]]
    error: str = ""


# Keyed by the whole connection value, so an edited connection (new URL, key or
# allow-list) misses the cache by itself. Errors are cached too: otherwise a dead
# upstream would cost every listing its full timeout.
_models_cache: dict[UpstreamConnection, _Fetched] = {}


def forget_upstream_models() -> None:
    """Drop every cached model listing."""
    _models_cache.clear()


async def upstream_models(
    *, refresh: bool = False, connections: Sequence[UpstreamConnection] | None = None
) -> UpstreamListing:
    """List the models of every upstream (or of `connections`), concurrently; never raise."""
    if connections is None:
        connections = await state.answer(connection_all)
    now = time.monotonic()
    for key in [k for k, v in _models_cache.items() if now - v.at >= MODELS_CACHE_SECONDS]:
        _models_cache.pop(key, None)
    results = await asyncio.gather(*(_models_of(c, refresh=refresh) for c in connections))
    models, errors, seen = [], [], set()
    for upstream, fetched in zip(connections, results, strict=True):
        if fetched.error:
            errors.append(
                {"connection_id": upstream.id, "name": upstream.name, "error": fetched.error}
            )
        for model in fetched.models:
            if model["id"] not in seen:
                seen.add(model["id"])
                models.append(dict(model))
    return UpstreamListing(models=models, errors=errors, connections=list(connections))


async def find_upstream_model(
    model_id: str,
) -> tuple[UpstreamConnection, dict[str, Any]] | None:
    """Return the upstream serving a model id and its model dict, from the cached listing."""
    listing = await upstream_models()
    for model in listing.models:
        if model["id"] == model_id:
            return listing.connection(model["connection_id"]), model
    return None


async def _models_of(upstream: UpstreamConnection, *, refresh: bool) -> _Fetched:
    cached = _models_cache.get(upstream)
    if cached and not refresh and time.monotonic() - cached.at < MODELS_CACHE_SECONDS:
        return cached
    try:
        fetched = _Fetched(time.monotonic(), await _fetch_models(upstream))
    except UpstreamError as exc:
        logger.warning("Listing models of %s (%s) failed: %s", upstream.name, upstream.id, exc)
        fetched = _Fetched(time.monotonic(), [], exc.message)
    _models_cache[upstream] = fetched
    return fetched


async def _fetch_models(upstream: UpstreamConnection) -> list[dict[str, Any]]:
    """GET {base_url}/models and return the allowed models. Raise UpstreamError."""
    timeout = min(upstream.timeout, MODEL_LIST_TIMEOUT)
    with _transport_errors(upstream, timeout):
        # httpx times each read separately; the outer deadline bounds a trickling server.
        async with asyncio.timeout(timeout), httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(f"{upstream.base_url}/models", headers=upstream.headers)
    _raise_for_status(upstream, response)
    payload = _json_of(upstream, response)
    items = payload.get("data") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise UpstreamError("The upstream's /models answer has no model list.", status=200)
    return [
        _model_entry(item, upstream)
        for item in items
        if isinstance(item, dict)
        and isinstance(item.get("id"), str)
        and upstream.allows(item["id"])
    ]


def _model_entry(item: dict[str, Any], upstream: UpstreamConnection) -> dict[str, Any]:
    created = item.get("created")
    return {
        "id": item["id"],
        "object": "model",
        "created": created if isinstance(created, int) else 0,
        "owned_by": str(item.get("owned_by") or upstream.name),
        "name": str(item.get("name") or item["id"]),
        "connection_id": upstream.id,
    }


# Chat completions


async def upstream_chat(connection: UpstreamConnection, body: dict[str, Any]) -> dict[str, Any]:
    """POST a non-streaming chat completion and return the upstream's JSON. Raise UpstreamError."""
    url = f"{connection.base_url}/chat/completions"
    payload = {**body, "stream": False}
    with _transport_errors(connection, connection.timeout):
        async with httpx.AsyncClient(timeout=connection.timeout) as client:
            response = await client.post(url, json=payload, headers=connection.headers)
    _raise_for_status(connection, response)
    data = _json_of(connection, response)
    if not isinstance(data, dict):
        raise UpstreamError("The upstream's answer is not a JSON object.", status=200)
    return data


async def upstream_chat_stream(
    connection: UpstreamConnection, body: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    """Yield each JSON chunk of a streamed chat completion as it arrives. Raise UpstreamError.

    Closing the generator (aclose, or cancelling the task awaiting it) closes the
    HTTP response, which is how the upstream learns to stop generating.
    """
    async for batch in upstream_chat_batches(connection, body):
        for chunk in batch:
            yield chunk


async def upstream_chat_batches(
    connection: UpstreamConnection, body: dict[str, Any]
) -> AsyncIterator[list[dict[str, Any]]]:
    """As upstream_chat_stream, a batch at a time: the chunks of one network read
    together, so what arrived together is passed on (and written) together."""
    url = f"{connection.base_url}/chat/completions"
    payload = {**body, "stream": True}
    with _transport_errors(connection, connection.timeout):
        async with (
            httpx.AsyncClient(timeout=connection.timeout) as client,
            client.stream("POST", url, json=payload, headers=connection.headers) as response,
        ):
            if response.is_error:
                await response.aread()
                _raise_for_status(connection, response)
            if response.headers.get("content-type", "").startswith("application/json"):
                # The upstream ignored "stream": answer with its whole completion as one chunk.
                await response.aread()
                yield [_completion_as_chunk(_json_of(connection, response))]
                return
            async for batch in _sse_batches(connection, response):
                yield batch


# SSE lines end in CR LF, LF or CR only: str.splitlines would also split a JSON string
# at U+2028 and the like, which may stand unescaped in a chunk.
_SSE_LINE_END = re.compile(r"\r\n|\r|\n")


async def _sse_batches(
    connection: UpstreamConnection, response: httpx.Response
) -> AsyncIterator[list[dict[str, Any]]]:
    pending = ""
    async for text in response.aiter_text():
        # The last piece has no line end yet: it waits for the next read.
        *lines, pending = _SSE_LINE_END.split(pending + text)
        batch, done = _chunks_of_lines(connection, lines)
        if batch:
            yield batch
        if done:
            return
    batch, _ = _chunks_of_lines(connection, [pending])
    if batch:
        yield batch


def _chunks_of_lines(
    connection: UpstreamConnection, lines: list[str]
) -> tuple[list[dict[str, Any]], bool]:
    """The chunks these SSE lines carry, and whether they reached `[DONE]`."""
    batch = []
    for line in lines:
        data = _sse_data(line)
        if data == "[DONE]":
            return batch, True
        if data is not None:
            chunk = _chunk_of(connection, data)
            if chunk is not None:
                batch.append(chunk)
    return batch, False


def _sse_data(line: str) -> str | None:
    """Return the payload of a `data:` line; None for comments, other fields and blanks."""
    if not line.startswith("data:"):
        return None
    return line[5:].strip() or None


def _chunk_of(connection: UpstreamConnection, data: str) -> dict[str, Any] | None:
    try:
        chunk = json.loads(data)
    except ValueError:
        logger.warning("Skipping a chunk from %s that is not JSON: %.200r", connection.name, data)
        return None
    if not isinstance(chunk, dict):
        return None
    if chunk.get("error") and not chunk.get("choices"):
        # OpenAI reports failures after the headers went out as an error chunk.
        raise UpstreamError(
            _error_text(chunk) or "The upstream stream failed.", connection_id=connection.id
        )
    return chunk


def _completion_as_chunk(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UpstreamError("The upstream's answer is not a JSON object.", status=200)
    choices = [
        {
            "index": choice.get("index", 0),
            "delta": choice.get("message") or {},
            "finish_reason": choice.get("finish_reason"),
        }
        for choice in data.get("choices") or []
        if isinstance(choice, dict)
    ]
    return {**data, "object": "chat.completion.chunk", "choices": choices}


# HTTP helpers


@contextmanager
def _transport_errors(connection: UpstreamConnection, timeout: float) -> Iterator[None]:
    """Turn httpx's and asyncio's transport failures into UpstreamError."""
    try:
        yield
    except (httpx.TimeoutException, TimeoutError) as exc:
        message = f"{connection.name} did not answer within {timeout:g} s."
        raise UpstreamError(message, connection_id=connection.id) from exc
    except httpx.HTTPError as exc:
        message = f"Cannot reach {connection.base_url}: {type(exc).__name__}: {exc}"
        raise UpstreamError(message, connection_id=connection.id) from exc


def _raise_for_status(connection: UpstreamConnection, response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    message = _error_text(_json_or_none(response)) or response.text.strip()[:500]
    message = message or f"HTTP {response.status_code} {response.reason_phrase}"
    raise UpstreamError(message, status=response.status_code, connection_id=connection.id)


def _json_of(connection: UpstreamConnection, response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(
            f"{connection.name} answered with something that is not JSON.",
            status=response.status_code,
            connection_id=connection.id,
        ) from None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_text(data: Any) -> str:
    """Return the message of an OpenAI ({"error": {"message"}}), FastAPI or plain error body."""
    if not isinstance(data, dict):
        return ""
    error = data.get("error") or data.get("detail") or data.get("message")
    if isinstance(error, dict):
        error = error.get("message") or error.get("msg")
    if isinstance(error, list):
        error = json.dumps(error)
    return error.strip() if isinstance(error, str) else ""
