"""The OpenAI-compatible chat API, with Open WebUI's extras.

Mounted twice: under /api/ (Open WebUI's paths, plus /api/v1/… aliases) and
under /v1/ (what OpenAI SDKs call with base_url=".../v1"). Operations translate
HTTP to the completion, model and action services and back; fnplatform.api maps
service errors to statuses.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from ninja import Router

from chat.schemas import ActionIn, ChatCompletionIn, TaskIn
from chat.services import completion as completions
from chat.services.actions import perform_action, prepare_action
from chat.services.background import (
    TAGS_GENERATION,
    TITLE_GENERATION,
    run_background_tasks,
    task_completion,
)
from chat.services.catalog import build_catalog, catalog_for
from chat.services.connections import UpstreamError
from chat.services.models import openai_model, openwebui_model, visible_models
from chat.services.tasks import stop_chat, track, was_stopped
from fnplatform.schemas import ErrorOut
from functions.services.request import origin_from_http
from functions.services.runtime import HookError, apply_outlet

log = logging.getLogger(__name__)


def _error_frame(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, HookError):
        return {
            "error": {
                "message": exc.described,
                "type": "function_error",
                "function_id": exc.function_id,
            }
        }
    return {"error": {"message": f"Upstream model failed: {exc}", "type": "upstream_error"}}


async def _sse(req: completions.CompletionRequest) -> AsyncIterator[str]:
    outcome = completions.Outcome()
    with track(req.body.get("chat_id"), str(req.user.pk)) as running:
        try:
            async for data in completions.stream_answer(req, outcome):
                yield f"data: {json.dumps(data)}\n\n"
            if req.body.get("background_tasks"):
                await run_background_tasks(req, completions.final_content(outcome))
        except asyncio.CancelledError:
            if not was_stopped(running):
                raise  # the client went away: nothing left to write to
            yield f"data: {json.dumps(completions.chunk_dict(req, {}, 'stop'))}\n\n"
        except (HookError, UpstreamError) as exc:
            log.error("Completion for %s failed mid-stream", req.body.get("model"), exc_info=exc)
            yield f"data: {json.dumps(_error_frame(exc))}\n\n"
    yield "data: [DONE]\n\n"


async def _complete(req: completions.CompletionRequest) -> HttpResponse:
    with track(req.body.get("chat_id"), str(req.user.pk)) as running:
        try:
            answer = await completions.complete(req)
            if req.body.get("background_tasks"):
                content = answer["choices"][0]["message"]["content"]
                answer |= await run_background_tasks(req, content)
            return JsonResponse(answer)
        except asyncio.CancelledError:
            if not was_stopped(running):
                raise
            return JsonResponse({"detail": "Stopped."}, status=499)
        except (HookError, UpstreamError) as exc:
            log.error("Completion for %s failed", req.body.get("model"), exc_info=exc)
            status = 502 if isinstance(exc, UpstreamError) else 500
            return JsonResponse(
                _error_frame(exc) | {"detail": _error_frame(exc)["error"]["message"]}, status=status
            )


async def chat_completion(request: HttpRequest, body: dict[str, Any]) -> HttpResponse:
    """Answer an OpenAI chat completion request, streamed as SSE when asked."""
    catalog = await catalog_for(body["model"])
    req = await sync_to_async(completions.prepare_completion)(
        user=request.auth, body=body, catalog=catalog, origin=origin_from_http(request)
    )
    await completions.start_completion(req)  # FilterAbort here becomes HTTP 400
    if not body.get("stream"):
        return await _complete(req)
    response = StreamingHttpResponse(_sse(req), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def list_models_openai(request: HttpRequest, refresh: bool = False) -> dict[str, Any]:
    catalog = await build_catalog(refresh=refresh)
    models = await sync_to_async(visible_models)(user=request.auth, catalog=catalog)
    return {"object": "list", "data": [openai_model(m) for m in models]}


def build_router(*, openwebui: bool) -> Router:
    """Return a router with the chat operations; the Open WebUI one has its extras."""
    router = Router(tags=["chat"])
    routes = [
        ("/chat/completions", "POST", _completions_view, "chat_completions"),
        ("/models", "GET", _models_view if openwebui else list_models_openai, "list_models"),
    ]
    if openwebui:
        routes += [
            ("/v1/chat/completions", "POST", _completions_view, "chat_completions_v1"),
            ("/v1/models", "GET", list_models_openai, "list_models_v1"),
            ("/chat/actions/{action_id}", "POST", run_chat_action, "run_chat_action"),
            ("/chat/completed", "POST", chat_completed, "chat_completed"),
            ("/tasks/chat/{chat_id}/stop", "POST", stop_chat_tasks, "stop_chat_tasks"),
        ]
    prefix = "" if openwebui else "openai_"
    for path, method, view, operation_id in routes:
        router.add_api_operation(path, [method], view, operation_id=prefix + operation_id)
    if openwebui:
        for path, view in [
            ("/v1/tasks/title/completions", generate_title),
            ("/v1/tasks/tags/completions", generate_tags),
        ]:
            router.add_api_operation(path, ["POST"], view, response=TASK_RESPONSES, tags=["tasks"])
    return router


# The answer is a chat.completion; the errors are fnplatform.api's (an inlet filter's
# refusal is a 400, a failing pipe a 500, a failing upstream a 502).
TASK_RESPONSES = {
    200: dict[str, Any],
    **{status: ErrorOut for status in (400, 401, 403, 404, 500, 502)},
}


async def generate_title(request: HttpRequest, payload: TaskIn):
    """A title for the conversation: a chat.completion whose content is {"title": "..."},
    asked of the model through the same filters as chat, with __task__ "title_generation"."""
    return await task_completion(
        user=request.auth,
        task=TITLE_GENERATION,
        body=payload.body(),
        origin=origin_from_http(request),
    )


async def generate_tags(request: HttpRequest, payload: TaskIn):
    """Tags for the conversation: a chat.completion whose content is {"tags": [...]},
    asked through the same filters as chat, with __task__ "tags_generation"."""
    return await task_completion(
        user=request.auth,
        task=TAGS_GENERATION,
        body=payload.body(),
        origin=origin_from_http(request),
    )


async def _completions_view(request: HttpRequest, payload: ChatCompletionIn):
    return await chat_completion(request, payload.body())


async def _models_view(request: HttpRequest, refresh: bool = False) -> dict[str, Any]:
    """Open WebUI's GET /api/models: with actions, toggle filters and the pipe flag."""
    catalog = await build_catalog(refresh=refresh)

    def shaped() -> list[dict[str, Any]]:
        models = visible_models(user=request.auth, catalog=catalog)
        return [openwebui_model(m) for m in models]

    return {
        "data": await sync_to_async(shaped)(),
        "errors": catalog.errors if request.auth.is_staff else [],
    }


async def run_chat_action(request: HttpRequest, action_id: str, payload: ActionIn):
    req = await sync_to_async(prepare_action)(
        user=request.auth,
        action_id=action_id,
        body=payload.body(),
        origin=origin_from_http(request),
    )
    return await perform_action(req)


async def chat_completed(request: HttpRequest, payload: ChatCompletionIn):
    """Run the outlet filters on a finished conversation (for clients that call it)."""
    body = payload.body()
    catalog = await catalog_for(body["model"])
    req = await sync_to_async(completions.prepare_completion)(
        user=request.auth, body=body, catalog=catalog, origin=origin_from_http(request)
    )
    return await apply_outlet(req.filters, body, req.context)


def stop_chat_tasks(request: HttpRequest, chat_id: str) -> dict[str, Any]:
    stopped = stop_chat(user=request.auth, chat_id=chat_id)
    return {"status": True, "stopped": stopped}
