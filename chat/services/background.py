"""Title and tag generation: after an answer (`background_tasks`), or asked for directly
(POST /api/v1/tasks/title/completions and /tags/completions).

They call the chat's model with `__task__` set (Open WebUI's task names), and,
unlike Open WebUI, through the global and model filters too, so a filter that
scrubs personal data protects these calls as well.
"""

import json
import re
from typing import Any

from asgiref.sync import sync_to_async

from chat.services.catalog import Catalog, catalog_for
from chat.services.completion import complete, prepare_completion, start_completion

TITLE_GENERATION = "title_generation"
TAGS_GENERATION = "tags_generation"

TITLE_PROMPT = (
    "Write a short title (3 to 5 words, no quotes) for this conversation. "
    'Answer only with JSON: {{"title": "..."}}\n\nConversation:\n{history}'
)
TAGS_PROMPT = (
    "Give 1 to 3 broad topic tags for this conversation. "
    'Answer only with JSON: {{"tags": ["..."]}}\n\nConversation:\n{history}'
)


def history_text(messages: list[dict], limit: int = 6) -> str:
    lines = []
    for message in messages[-limit:]:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        lines.append(f"{message.get('role', 'user')}: {content}")
    return "\n".join(lines)


async def task_answer(
    *,
    user,
    model_id: str,
    prompt: str,
    task: str,
    catalog: Catalog,
    task_body: dict | None = None,
    chat_id: str | None = None,
    origin: dict | None = None,
) -> dict[str, Any]:
    """Ask the model one task prompt (filters applied, __task__ set); return the completion.
    `origin` is where the request came from, for `__request__`."""
    body: dict[str, Any] = {
        "model": model_id,
        "messages": [{"role": "user", "content": prompt}],
        "stream": False,
    }
    if chat_id:
        body["chat_id"] = chat_id
    req = await sync_to_async(prepare_completion)(
        user=user, body=body, catalog=catalog, task=task, task_body=task_body, origin=origin
    )
    await start_completion(req)
    return await complete(req)


async def run_task(
    *, user, model_id: str, prompt: str, task: str, catalog: Catalog, origin: dict | None = None
) -> str:
    """Ask the model one task prompt (filters applied, __task__ set); return its text."""
    answer = await task_answer(
        user=user, model_id=model_id, prompt=prompt, task=task, catalog=catalog, origin=origin
    )
    return str(answer["choices"][0]["message"]["content"] or "")


PROMPTS = {TITLE_GENERATION: TITLE_PROMPT, TAGS_GENERATION: TAGS_PROMPT}


async def task_completion(
    *, user, task: str, body: dict[str, Any], origin: dict | None = None
) -> dict[str, Any]:
    """Open WebUI's POST /api/v1/tasks/{title,tags}/completions: the task's chat completion
    for body's model and messages, its content the JSON the prompt asks for; __task_body__
    is the request body. Raise ObjectDoesNotExist / PermissionDenied for the model."""
    model_id = str(body.get("model") or "")
    return await task_answer(
        user=user,
        model_id=model_id,
        task=task,
        catalog=await catalog_for(model_id),
        prompt=PROMPTS[task].format(history=history_text(body.get("messages") or [])),
        task_body=body,
        chat_id=body.get("chat_id"),
        origin=origin,
    )


def _json_field(text: str, key: str) -> Any:
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match:
        try:
            return json.loads(match.group(0)).get(key)
        except (json.JSONDecodeError, AttributeError):
            return None
    return None


async def generate_title(
    *, user, model_id: str, messages: list[dict], catalog: Catalog, origin: dict | None = None
) -> str:
    text = await run_task(
        user=user,
        model_id=model_id,
        task=TITLE_GENERATION,
        catalog=catalog,
        origin=origin,
        prompt=TITLE_PROMPT.format(history=history_text(messages)),
    )
    title = _json_field(text, "title") or text
    return str(title).strip().strip('"').splitlines()[0][:120] if str(title).strip() else ""


async def generate_tags(
    *, user, model_id: str, messages: list[dict], catalog: Catalog, origin: dict | None = None
):
    text = await run_task(
        user=user,
        model_id=model_id,
        task=TAGS_GENERATION,
        catalog=catalog,
        origin=origin,
        prompt=TAGS_PROMPT.format(history=history_text(messages)),
    )
    tags = _json_field(text, "tags")
    return [str(t)[:40] for t in tags][:3] if isinstance(tags, list) else []


async def run_background_tasks(req, content: str) -> dict[str, Any]:
    """Run the tasks a request asked for (`background_tasks`); record them as events."""
    wanted = req.body.get("background_tasks") or {}
    messages = [*(req.body.get("messages") or []), {"role": "assistant", "content": content}]
    model_id = str(req.body.get("model"))
    results: dict[str, Any] = {}
    if wanted.get("title_generation"):
        results["title"] = await generate_title(
            user=req.user,
            model_id=model_id,
            messages=messages,
            catalog=req.catalog,
            origin=req.origin,
        )
        await req.context.event_emitter({"type": "chat:title", "data": results["title"]})
    if wanted.get("tags_generation"):
        results["tags"] = await generate_tags(
            user=req.user,
            model_id=model_id,
            messages=messages,
            catalog=req.catalog,
            origin=req.origin,
        )
        await req.context.event_emitter({"type": "chat:tags", "data": results["tags"]})
    return results
