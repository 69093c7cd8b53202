"""The steps of a chat completion: inlet filters -> pipe or upstream model -> stream
filters -> outlet filters.

`prepare_completion` (sync) resolves the model, checks access and loads the filters
and pipe with their valves, from the process caches (fnplatform.state), loading what
they lack; `aprepare_completion` does the same on the event loop, with no thread hop
when the caches are warm and one on a miss. From `start_completion` on there is no
ORM: it runs the inlet filters; `stream_answer` yields batches of OpenAI
`chat.completion.chunk` dicts that have passed the stream filters (what was ready
together, the first never held back), then runs the outlet filters on the finished
message. Callers use these through the one completion service,
chat.services.run.completion_run.
"""

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied

from chat.services.catalog import Catalog, CatalogModel, find_model
from chat.services.connections import (
    UpstreamConnection,
    connection_all,
    upstream_chat_batches,
)
from chat.services.models import model_dict
from chat.services.plugin_request import plugin_request_for
from fnplatform import state
from functions.seam import PluginCall
from functions.services.context import CallContext
from functions.services.events import Event, EventRecorder
from functions.services.executor import get_executor
from functions.services.plugin_contract import Chunk
from functions.services.plugins import (
    function_entry,
    model_allowed,
    plugin_call,
    user_dict,
    wiring_for,
)
from functions.services.runtime import (
    apply_inlet,
    apply_outlet,
    run_pipe,
    stream_through,
)

# Open WebUI's request extras: never forwarded to an upstream model or a pipe's body.
OPEN_WEBUI_EXTRAS = frozenset(
    {
        "metadata",
        "filter_ids",
        "tool_ids",
        "features",
        "files",
        "chat_id",
        "id",
        "session_id",
        "variables",
        "background_tasks",
        "model_item",
        "params",
        "tool_servers",
        "skill_ids",
        "terminal_id",
        "folder_id",
        "chat_variables",
        "parent_id",
        "user_message",
        "assistant_message_id",
        "message_ids",
    }
)

# What a pipe's body lacks, as in Open WebUI: the metadata (given as __metadata__), the
# keys process_chat_payload removes (files come as __files__), and the routing keys its
# chat endpoint pops into the metadata before any plugin runs.
PIPE_BODY_DROPPED = frozenset(
    {
        "metadata",
        "files",
        "tool_ids",
        "features",
        "variables",
        "chat_id",
        "id",
        "session_id",
        "filter_ids",
        "tool_servers",
        "model_item",
        "background_tasks",
        "parent_id",
        "parent_message",
    }
)
# Request params that steer Open WebUI itself, never sent on as completion parameters.
OPEN_WEBUI_PARAMS = frozenset(
    {
        "stream_response",
        "stream_delta_chunk_size",
        "function_calling",
        "reasoning_tags",
        "compact_token_threshold",
        "system",
        "note_id",
        "tool_approval_mode",
    }
)


@dataclass
class Target:
    """Where the body goes after the inlet filters: a pipe or an upstream connection."""

    model: CatalogModel
    pipe: PluginCall | None = None
    connection: UpstreamConnection | None = None


@dataclass
class CompletionRequest:
    user: Any
    body: dict[str, Any]
    target: Target
    filters: list[PluginCall]
    context: CallContext
    recorder: EventRecorder
    catalog: Catalog
    # Where the request came from (functions.services.request.origin), credentials left
    # out: the background tasks and nested completions it starts carry it on.
    origin: dict | None = None
    completion_id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))


def resolve_target(*, user, model_id: str, catalog: Catalog) -> Target:
    """Find a model the user may use; raise ObjectDoesNotExist or PermissionDenied.
    From the caches: on the event loop it raises state.Miss when they lack something."""
    model = catalog.models.get(model_id or "")
    if model is None:
        raise ObjectDoesNotExist(f"Model {model_id!r} not found.")
    if not model_allowed(user=user, model_id=model_id):
        raise PermissionDenied(f"You may not use the model {model_id!r}.")
    if model.pipe_id:
        return Target(model, pipe=plugin_call(model.pipe_id, user))
    connections = {c.id: c for c in connection_all()}
    if model.connection_id not in connections:
        raise ObjectDoesNotExist(f"The connection serving {model_id!r} is gone.")
    return Target(model, connection=connections[model.connection_id])


def _requested_filter_ids(body: dict) -> set[str]:
    ids = body.get("filter_ids") or (body.get("metadata") or {}).get("filter_ids") or []
    return {str(i) for i in ids} if isinstance(ids, list) else set()


def _filters_for(user, model_id: str, body: dict) -> list[PluginCall]:
    """Global and attached filters; toggle filters only when the request switches them on."""
    switched_on = _requested_filter_ids(body)
    calls = []
    for function_id in wiring_for(model_id).filter_ids:
        function = function_entry(function_id)
        if function is None or (function.toggle and function_id not in switched_on):
            continue  # (None: deleted since the filter list was cached, this generation)
        calls.append(plugin_call(function_id, user))
    return calls


def _metadata(user, body: dict, model: CatalogModel) -> dict[str, Any]:
    given = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    return {
        **given,
        "user_id": str(user.pk),
        "chat_id": body.get("chat_id"),
        "message_id": body.get("id"),
        "session_id": body.get("session_id"),
        "filter_ids": sorted(_requested_filter_ids(body)),
        "tool_ids": body.get("tool_ids") or [],
        "features": body.get("features") or {},
        "files": body.get("files") or [],
        "model_id": model.id,
        "direct": False,
    }


def apply_params(body: dict[str, Any]) -> dict[str, Any]:
    """Open WebUI's `params` flattened to the top level (apply_params_to_form_data): its
    own steering keys dropped, `custom_params` (JSON strings parsed) merged in."""
    params = body.get("params")
    if not isinstance(params, dict):
        return body
    body = {k: v for k, v in body.items() if k != "params"}
    params = {k: v for k, v in params.items() if k not in OPEN_WEBUI_PARAMS}
    custom = params.pop("custom_params", None)
    for key, value in (custom if isinstance(custom, dict) else {}).items():
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # not JSON: kept as the string
                value = json.loads(value)
        params[key] = value
    return body | {k: v for k, v in params.items() if v is not None}


def prepare_completion(
    *,
    user,
    body: dict,
    catalog: Catalog,
    task: str | None = None,
    task_body: dict | None = None,
    origin: dict | None = None,
) -> CompletionRequest:
    """Resolve and load everything a completion needs (sync; call before streaming).

    A task (title or tag generation) sets __task__, and __task_body__ to `task_body`
    (the request that asked for the task; the task's own body when not given).
    `origin` is where the request came from, for `__request__`."""
    with state.scope():  # one generation for every lookup
        return _prepare(user, body, catalog, task, task_body, origin)


async def aprepare_completion(
    *,
    user,
    body: dict,
    catalog: Catalog,
    task: str | None = None,
    task_body: dict | None = None,
    origin: dict | None = None,
) -> CompletionRequest:
    """prepare_completion on the event loop: from the caches with no thread hop when
    they hold everything (and the request's generation is still current), else once
    in a thread that loads what they lack."""
    return await state.answer(_prepare, user, body, catalog, task, task_body, origin)


def _prepare(user, body, catalog, task, task_body, origin) -> CompletionRequest:
    # Nothing here may matter before a state.Miss: on a miss it runs again in a thread.
    body = apply_params(body)
    target = resolve_target(user=user, model_id=str(body.get("model", "")), catalog=catalog)
    filters = _filters_for(user, target.model.id, body)
    request = plugin_request_for(user=user, origin=origin, catalog=catalog)
    recorder = EventRecorder(function_id=target.model.pipe_id or "")
    metadata = _metadata(user, body, target.model)
    if task:
        metadata["task"] = task
    context = CallContext(
        user=user_dict(user),
        event_emitter=recorder.emit,
        event_call=recorder.call,
        metadata=metadata,
        model=model_dict(target.model),
        messages=body.get("messages") or [],
        chat_id=body.get("chat_id"),
        session_id=body.get("session_id"),
        message_id=body.get("id"),
        files=body.get("files") or [],
        task=task,
        task_body=(body if task_body is None else task_body) if task else None,
        request=request,
    )
    # Filters see the request's metadata in the body, as in Open WebUI (pipes do not);
    # `stream` is always there, as Open WebUI's form fills it in (pipes read it).
    body = {"stream": False} | dict(body) | {"metadata": metadata}
    return CompletionRequest(user, body, target, filters, context, recorder, catalog, origin)


# Running a completion: from here on no ORM, only plain data and worker calls.


def chunk_dict(req: CompletionRequest, delta: dict, finish_reason: str | None = None) -> dict:
    return {
        "id": req.completion_id,
        "object": "chat.completion.chunk",
        "created": req.created,
        "model": req.body.get("model"),
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def event_chunk(req: CompletionRequest, event: Event) -> dict:
    """A plugin's event as a chunk an OpenAI client reads past: one choice with an empty
    delta (so `chunk.choices[0].delta.content` is None, not an IndexError) and the
    event, {"type", "data"}, under "event": the key Open WebUI itself takes events from
    in a streamed answer (so an Open WebUI using this server as a connection shows them)."""
    return chunk_dict(req, {}) | {"event": event.as_dict()}


async def _retarget(req: CompletionRequest) -> None:
    """An inlet may route the request to another model; load that one instead."""
    model_id = str(req.body.get("model", ""))
    if model_id != req.target.model.id:
        if model_id not in req.catalog.models:
            found = await find_model(model_id)
            if found is not None:
                req.catalog.models[found.id] = found
        req.target = await state.answer(
            resolve_target, user=req.user, model_id=model_id, catalog=req.catalog
        )
        req.context.model = model_dict(req.target.model)


def _forward_body(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in OPEN_WEBUI_EXTRAS}


async def _source_batches(req: CompletionRequest) -> AsyncIterator[list[Chunk]]:
    """Yield the raw answer from the pipe or the upstream model, a batch at a time."""
    if req.target.pipe is not None:
        body = {k: v for k, v in req.body.items() if k not in PIPE_BODY_DROPPED}
        async for batch in run_pipe(req.target.pipe, body, req.context):
            yield batch
        return
    body = _forward_body(req.body) | {"model": req.target.model.id, "stream": True}
    # Always ask for usage: non-streamed answers report it, and outlets receive it.
    body.setdefault("stream_options", {"include_usage": True})
    async for batch in upstream_chat_batches(req.target.connection, body):
        yield [Chunk(data=data) for data in batch]


def _to_chunk_dicts(req: CompletionRequest, chunk: Chunk) -> list[dict]:
    """Turn one internal chunk into OpenAI chunk dicts (full completions become a delta)."""
    if chunk.done:
        return []
    if chunk.data is None:
        return [chunk_dict(req, {"content": chunk.text})] if chunk.text else []
    data = chunk.data
    choices = data.get("choices")
    if isinstance(choices, list) and choices and "message" in (choices[0] or {}):
        message = choices[0]["message"] or {}
        delta = {k: v for k, v in message.items() if k in ("content", "tool_calls")}
        finished = chunk_dict(req, delta, choices[0].get("finish_reason"))
        if data.get("usage"):
            finished["usage"] = data["usage"]
        return [finished]
    return [data]


async def _dict_batches(
    req: CompletionRequest, batches: AsyncIterator[list[Chunk]]
) -> AsyncIterator[list[dict]]:
    """The source's batches as OpenAI chunk dicts (a pipe's inline events among them)."""
    async for chunks in batches:
        out = [data for chunk in chunks for data in _to_chunk_dicts(req, chunk)]
        if out:
            yield out


async def _events_in_place(
    req: CompletionRequest, batches: AsyncIterator[list[Any]]
) -> AsyncIterator[list[Any]]:
    """Emit the inline events (`{"event": ...}` dicts a pipe yields) in their place in the
    answer, what came before one passed on first. As in Open WebUI, they have been
    through the stream filters like any chunk; one with choices is a chunk as well."""
    async for batch in batches:
        out: list[Any] = []
        for data in batch:
            if not isinstance(data, dict) or "event" not in data:
                out.append(data)
                continue
            if out:
                yield out
                out = []
            await req.context.event_emitter(data["event"])
            if "choices" in data:
                out.append({k: v for k, v in data.items() if k != "event"})
        if out:
            yield out


async def _stream_filtered(
    req: CompletionRequest, batches: AsyncIterator[list[dict]]
) -> AsyncIterator[list[dict]]:
    """The batches through the stream filters: one worker session per filter for the
    whole answer (functions.services.runtime.stream_through)."""
    if not any(f.has_hook("stream") for f in req.filters):
        async for batch in batches:
            yield batch
        return
    async with contextlib.aclosing(stream_through(req.filters, batches, req.context)) as out:
        async for batch in out:
            yield batch


@dataclass
class Outcome:
    """What streamed out, gathered for the outlet filters and non-streamed answers."""

    content: str = ""
    usage: dict | None = None
    finish_reason: str | None = None
    outlet_body: dict | None = None


async def start_completion(req: CompletionRequest) -> None:
    """Run the inlet filters (FilterAbort aborts the turn) and follow a rerouted model."""
    # Functions called for the first time in a while start their workers together,
    # not one after another as the hooks run.
    # Filters whose hooks are all provable no-ops are never called: none of theirs.
    called = [f for f in req.filters if set(f.report.hooks) - set(f.report.noop_hooks)]
    await get_executor().warm([*called, *([req.target.pipe] if req.target.pipe else [])])
    req.body = await apply_inlet(req.filters, req.body, req.context)
    req.context.messages = req.body.get("messages") or []
    if any(f.report.file_handler for f in req.filters):
        # A file_handler filter has dealt with the files: no built-in handling after it.
        req.body.pop("files", None)
        (req.body.get("metadata") or {}).pop("files", None)
    await _retarget(req)


def _accumulate(outcome: Outcome, data: Any) -> None:
    if not isinstance(data, dict):
        return  # a stream filter's own shape: passed on, not an OpenAI chunk
    for choice in data.get("choices") or []:
        delta = (choice or {}).get("delta") or {}
        if isinstance(delta.get("content"), str):
            outcome.content += delta["content"]
        if choice.get("finish_reason"):
            outcome.finish_reason = choice["finish_reason"]
    if data.get("usage"):
        outcome.usage = data["usage"]


async def stream_answer(req: CompletionRequest, outcome: Outcome) -> AsyncIterator[list[dict]]:
    """Yield batches of chunk dicts through the stream filters, then run the outlet
    filters. Each batch is what was ready together: the first is never held back."""
    source = _dict_batches(req, _source_batches(req))
    async for batch in _events_in_place(req, _stream_filtered(req, source)):
        for data in batch:
            _accumulate(outcome, data)
        yield batch
    if outcome.finish_reason is None:
        outcome.finish_reason = "stop"
        final = chunk_dict(req, {}, "stop")
        if outcome.usage:
            final["usage"] = outcome.usage
        yield [final]
    await finish_completion(req, outcome)


async def finish_completion(req: CompletionRequest, outcome: Outcome) -> None:
    """Run the outlet filters on the finished assistant message."""
    outcome.outlet_body = await apply_outlet(req.filters, outlet_body(req, outcome), req.context)


def outlet_body(req: CompletionRequest, outcome: Outcome) -> dict[str, Any]:
    """Open WebUI's outlet body: the conversation ending with this answer."""
    answer = {
        "id": req.body.get("id") or req.completion_id,
        "role": "assistant",
        "content": outcome.content,
        "timestamp": int(time.time()),
    }
    if outcome.usage:
        answer["usage"] = outcome.usage
    return {
        "model": req.body.get("model"),
        "messages": [*(req.body.get("messages") or []), answer],
        "chat_id": req.body.get("chat_id"),
        "session_id": req.body.get("session_id"),
        "id": answer["id"],
        "filter_ids": sorted(_requested_filter_ids(req.body)),
    }


def final_content(outcome: Outcome) -> str:
    """The answer after the outlet filters (they may rewrite the last message)."""
    messages = (outcome.outlet_body or {}).get("messages") or []
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
        content = messages[-1].get("content")
        if isinstance(content, str):
            return content
    return outcome.content


def completion_dict(req: CompletionRequest, outcome: Outcome) -> dict[str, Any]:
    """The whole answer as one OpenAI chat.completion (outlet filters applied)."""
    result = {
        "id": req.completion_id,
        "object": "chat.completion",
        "created": req.created,
        "model": req.body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": final_content(outcome)},
                "logprobs": None,
                "finish_reason": outcome.finish_reason or "stop",
            }
        ],
    }
    if outcome.usage:
        result["usage"] = outcome.usage
    return result
