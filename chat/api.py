"""The OpenAI-compatible chat API, with Open WebUI's extras.

Mounted twice: under /api/ (Open WebUI's paths, plus /api/v1/… aliases) and
under /v1/ (what OpenAI SDKs call with base_url=".../v1"). Operations translate
HTTP to the completion, model and action services and back; fnplatform.api maps
service errors to statuses.
"""

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from ninja import Router

from chat.schemas import ActionIn, ChatCompletionIn, TaskIn
from chat.services.actions import action_answer, aprepare_action, perform_action
from chat.services.background import TAGS_GENERATION, TITLE_GENERATION
from chat.services.catalog import build_catalog
from chat.services.live import LiveRun, chat_completion_run, stop_chat_runs
from chat.services.models import openai_model, openwebui_model, visible_models
from chat.services.run import (
    CompletionFailed,
    CompletionRun,
    CompletionStopped,
    completion_run,
    task_completion,
)
from fnplatform.schemas import ErrorOut
from functions.services.request import origin_from_http

log = logging.getLogger(__name__)


async def _sse(run: CompletionRun | LiveRun) -> AsyncIterator[str]:
    # One write per batch: chunks (and events) that were ready together go out together.
    # An event is a chunk with an empty delta and the event under "event" (README, "Events
    # for API clients"), which OpenAI SDKs read past.
    async for batch in run.stream(events=True):
        yield "".join(f"data: {json.dumps(data)}\n\n" for data in batch)
    yield "data: [DONE]\n\n"


async def _answer(run: CompletionRun | LiveRun) -> HttpResponse:
    # The plugins' events in an extra top-level field, which OpenAI SDKs keep as an extra.
    try:
        answer = await run.answer()
    except CompletionStopped as exc:
        return JsonResponse({"detail": str(exc), "events": run.events()}, status=499)
    except CompletionFailed as exc:
        body = exc.frame | {"detail": str(exc), "events": run.events()}
        return JsonResponse(body, status=exc.status)
    return JsonResponse(answer | {"events": run.events()})


async def chat_completion(request: HttpRequest, body: dict[str, Any]) -> HttpResponse:
    """Answer an OpenAI chat completion request, streamed as SSE when asked; saved into
    the caller's chat when it names one (`chat_id`) and the answer's id (`id`)."""
    # Unknown models (404), refused ones (403), inlet refusals (400) and another
    # user's chat (404) fail here, before any of the answer is sent.
    run = await chat_completion_run(user=request.auth, body=body, origin=origin_from_http(request))
    if not body.get("stream"):
        return await _answer(run)
    response = StreamingHttpResponse(_sse(run), content_type="text/event-stream")
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
    """Run an action on a message; answer its result with its events (action_answer)."""
    req = await aprepare_action(
        user=request.auth,
        action_id=action_id,
        body=payload.body(),
        origin=origin_from_http(request),
    )
    return action_answer(await perform_action(req), req.recorder.events)


async def chat_completed(request: HttpRequest, payload: ChatCompletionIn):
    """Run the outlet filters on a finished conversation (for clients that call it)."""
    body = payload.body()
    run = await completion_run(
        user=request.auth, body=body, origin=origin_from_http(request), inlet=False
    )
    return await run.completed(body)


def stop_chat_tasks(request: HttpRequest, chat_id: str) -> dict[str, Any]:
    stopped = stop_chat_runs(user=request.auth, chat_id=chat_id)
    return {"status": True, "stopped": stopped}
