"""The models users can chat with: pipes, manifold entries and upstream models.

Manifold `pipes` listings are gathered concurrently, each with a timeout, and
cached briefly per (function, source, valves); one failing manifold is reported
in `errors` and hides nothing else. Upstream models come from the connections
service, which has its own cache and error reporting. The pipes themselves come
from the function cache (functions.services.plugins), so a warm lookup runs no query
and no thread hop.
"""

import asyncio
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings

from chat.services.connections import find_upstream_model, upstream_models
from fnplatform import state
from functions.models import Function, FunctionType
from functions.seam import PluginCall
from functions.services.context import CallContext
from functions.services.executor import CallTimeout, PluginFailed, get_executor
from functions.services.plugins import FunctionEntry, PluginUnavailable, function_entry

_manifold_cache: dict[tuple, tuple[float, list[dict]]] = {}


@dataclass
class CatalogModel:
    id: str
    name: str
    created: int
    owned_by: str = "fnplatform"
    pipe_id: str | None = None
    sub_id: str | None = None
    connection_id: str | None = None
    has_user_valves: bool = False


@dataclass
class Catalog:
    models: dict[str, CatalogModel] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _PipeEntry:
    function: FunctionEntry
    call: PluginCall | None
    error: str | None
    has_user_valves: bool


def _pipe_entries() -> list[_PipeEntry]:
    """Every active pipe with its report and valves (from the caches; sync)."""
    entries = []
    for function_id in _active_pipe_ids():
        function = function_entry(function_id)
        if function is None:
            continue
        try:
            call, error = function.runnable(), None
        except PluginUnavailable as exc:
            call, error = None, exc.messages[0]
        entries.append(_PipeEntry(function, call, error, function.has_user_valves))
    return entries


def _active_pipe_ids() -> tuple[str, ...]:
    return state.cached("active_pipes", None, _load_active_pipe_ids)


def _load_active_pipe_ids() -> tuple[str, ...]:
    pipes = Function.objects.filter(type=FunctionType.PIPE, is_active=True)
    return tuple(pipes.values_list("id", flat=True))


def _cache_key(call: PluginCall, function: FunctionEntry) -> tuple:
    dumped = json.dumps(call.valves, sort_keys=True, default=str)
    return (function.id, call.sha256, dumped)


async def list_manifold(call: PluginCall, timeout: float) -> list[dict]:
    """Return a manifold's [{"id", "name"}] from its list, sync method or async method,
    asked of its worker."""
    # Nobody's call: the host-data shims give a listing no one's users, chats or files.
    context = CallContext(user={"id": "", "name": "model listing", "role": "user"})
    listing = replace(call, timeout=timeout)
    pipes = await get_executor().invoke(listing, "pipes", None, context, data_name=None)
    if not isinstance(pipes, list):
        raise TypeError(f"pipes must give a list, not {type(pipes).__name__}")
    return [p for p in pipes if isinstance(p, dict) and "id" in p]


async def _manifold_models(entry: _PipeEntry, catalog: Catalog) -> list[CatalogModel]:
    call, function = entry.call, entry.function
    key = _cache_key(call, function)
    cached = _manifold_cache.get(key)
    if cached and time.monotonic() - cached[0] < settings.FUNCTIONS_MANIFOLD_CACHE_SECONDS:
        listed = cached[1]
    else:
        try:
            listed = await list_manifold(call, settings.FUNCTIONS_MANIFOLD_TIMEOUT)
        except (TimeoutError, CallTimeout):
            catalog.errors.append(_error(function, "listing its models timed out"))
            return []
        except Exception as exc:
            kind = exc.kind if isinstance(exc, PluginFailed) else type(exc).__name__
            catalog.errors.append(_error(function, f"{kind}: {exc}"))
            return []
        _manifold_cache[key] = (time.monotonic(), listed)
    prefix = call.report.name
    return [
        CatalogModel(
            id=f"{function.id}.{item['id']}",
            name=f"{prefix}{item.get('name', item['id'])}",
            created=function.created,
            pipe_id=function.id,
            sub_id=str(item["id"]),
            has_user_valves=entry.has_user_valves,
        )
        for item in listed
    ]


def _error(function: FunctionEntry, message: str) -> dict[str, Any]:
    return {"source": f"function:{function.id}", "name": function.name, "error": message}


async def _pipe_models(entry: _PipeEntry, catalog: Catalog) -> list[CatalogModel]:
    if entry.call is None:
        catalog.errors.append(_error(entry.function, entry.error or "cannot be loaded"))
        return []
    if entry.call.report.manifold:
        return await _manifold_models(entry, catalog)
    function = entry.function
    return [
        CatalogModel(
            function.id,
            function.name,
            function.created,
            pipe_id=function.id,
            has_user_valves=entry.has_user_valves,
        )
    ]


async def _upstream_models(catalog: Catalog, refresh: bool) -> list[CatalogModel]:
    listing = await upstream_models(refresh=refresh)
    catalog.errors.extend(
        {
            "source": f"connection:{e['connection_id']}",
            "name": e.get("name", ""),
            "error": e["error"],
        }
        for e in listing.errors
    )
    return [
        CatalogModel(
            id=m["id"],
            name=m.get("name") or m["id"],
            created=int(m.get("created") or 0),
            owned_by=m.get("owned_by") or "openai",
            connection_id=m["connection_id"],
        )
        for m in listing.models
    ]


async def build_catalog(*, refresh: bool = False) -> Catalog:
    """Return every model on offer, with the errors of sources that failed."""
    if refresh:
        _manifold_cache.clear()
    catalog = Catalog()
    entries = await state.answer(_pipe_entries)
    groups = await asyncio.gather(
        _upstream_models(catalog, refresh), *(_pipe_models(e, catalog) for e in entries)
    )
    # Pipes win over an upstream model with the same id: they are ours to route.
    for group in [groups[0], *groups[1:]]:
        for model in group:
            catalog.models[model.id] = model
    global _last_listing
    _last_listing = catalog
    return catalog


# The last full listing, as Open WebUI keeps `app.state.MODELS`: what plugins are shown
# as the models on offer without listing every manifold again for each request.
_last_listing: Catalog | None = None


def last_listing() -> Catalog:
    """The models of the last full listing in this process (empty before the first)."""
    return _last_listing or Catalog()


def _pipe_model(model_id: str) -> CatalogModel | None:
    """The active pipe (or manifold entry) a model id names, from the function cache."""
    function_id, _, sub_id = model_id.partition(".")
    if len(function_id) > Function._meta.get_field("id").max_length:
        return None  # no such id: not worth a cache entry a client could make huge
    function = function_entry(function_id)
    if function is None or function.type != FunctionType.PIPE or not function.is_active:
        return None
    if bool(sub_id) != bool(function.load_result.get("manifold")):
        return None
    return CatalogModel(
        id=model_id,
        name=function.name if not sub_id else model_id,
        created=function.created,
        pipe_id=function.id,
        sub_id=sub_id or None,
        has_user_valves=function.has_user_valves,
    )


async def find_model(model_id: str) -> CatalogModel | None:
    """Find one model without listing every manifold: the fast path of a completion."""
    model = await state.answer(_pipe_model, model_id)
    if model is not None:
        return model
    found = await find_upstream_model(model_id)
    if found is None:
        return None
    connection, data = found
    return CatalogModel(
        id=model_id,
        name=data.get("name") or model_id,
        created=int(data.get("created") or 0),
        owned_by=data.get("owned_by") or "openai",
        connection_id=connection.id,
    )


async def catalog_for(model_id: str) -> Catalog:
    """A catalog holding just this model (or nothing, when it does not exist)."""
    catalog = Catalog()
    model = await find_model(model_id)
    if model is not None:
        catalog.models[model.id] = model
    return catalog
