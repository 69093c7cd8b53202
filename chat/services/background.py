"""Title and tag generation, as prompts and parsers: what the model is asked and how
its answer is read. Running them is the completion service's (chat.services.run:
`task_completion`, `run_background_tasks`).
"""

import json
import re
from typing import Any

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
PROMPTS = {TITLE_GENERATION: TITLE_PROMPT, TAGS_GENERATION: TAGS_PROMPT}


def history_text(messages: list[dict], limit: int = 6) -> str:
    lines = []
    for message in messages[-limit:]:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        lines.append(f"{message.get('role', 'user')}: {content}")
    return "\n".join(lines)


def task_prompt(task: str, messages: list[dict]) -> str:
    """The prompt of a task (TITLE_GENERATION or TAGS_GENERATION) for a conversation."""
    return PROMPTS[task].format(history=history_text(messages))


def _json_field(text: str, key: str) -> Any:
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match:
        try:
            return json.loads(match.group(0)).get(key)
        except (json.JSONDecodeError, AttributeError):
            return None
    return None


def parse_title(text: str) -> str:
    """The title in a model's answer to the title prompt (its JSON, or its first line)."""
    title = str(_json_field(text, "title") or text).strip()
    return title.splitlines()[0].strip().strip('"')[:120] if title else ""


def parse_tags(text: str) -> list[str]:
    """At most three short tags from a model's answer to the tags prompt."""
    tags = _json_field(text, "tags")
    return [str(t)[:40] for t in tags][:3] if isinstance(tags, list) else []
