"""Give every chat's messages rows of their own, read from its document.

Until now a chat's messages lived only in its document (`chat.history.messages`, or
the flat `chat.messages` list of Open WebUI's oldest chats). Each becomes a Message
row: its parent link, role, model, content, sources, files, embeds, usage, error,
status history and time, and its other keys in `data`. The document is left as it
was (it keeps its copy of the history). Frozen here on purpose: later changes to
chat.services.history must not change what this migration did.
"""

from datetime import UTC, datetime

from django.db import migrations

COLUMN_KEYS = {
    "id", "parentId", "childrenIds", "role", "content", "model", "timestamp", "done",
    "status", "statusHistory", "sources", "files", "embeds", "usage", "error",
}


def _clean(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_clean(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _nodes(document):
    """(id, message) pairs, parents first: the history's, else the old flat list."""
    history = document.get("history")
    messages = history.get("messages") if isinstance(history, dict) else None
    if isinstance(messages, dict) and messages:
        nodes = {str(k)[:255]: v for k, v in messages.items() if isinstance(v, dict)}
    elif isinstance(document.get("messages"), list):
        nodes, previous = {}, None
        for position, raw in enumerate(document["messages"]):
            if isinstance(raw, dict):
                message_id = str(raw.get("id") or f"message-{position}")[:255]
                nodes[message_id] = {"parentId": previous, **raw, "id": message_id}
                previous = message_id
    else:
        return []
    placed, ordered = set(), []
    while len(ordered) < len(nodes):
        ready = [
            (k, v) for k, v in nodes.items()
            if k not in placed and (v.get("parentId") not in nodes or v.get("parentId") in placed)
        ]
        if not ready:  # a parent cycle: the rest become roots
            ready = [(k, {**v, "parentId": None}) for k, v in nodes.items() if k not in placed]
        for message_id, raw in ready:
            placed.add(message_id)
            ordered.append((message_id, raw))
    return ordered


def _moment(timestamp):
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float) or timestamp <= 0:
        return None
    seconds = timestamp / 1000 if timestamp > 10_000_000_000 else timestamp
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _list(value):
    return value if isinstance(value, list) else []


def _row(Message, chat, message_id, raw, parent):
    raw = _clean(raw)
    content = raw.get("content")
    error = raw.get("error")
    error = (error if isinstance(error, dict) else {"content": str(error)}) if error else None
    data = {k: (None if k in COLUMN_KEYS else v) for k, v in raw.items()}
    if content is not None and not isinstance(content, str):
        data["content"], content = content, ""
    status = "error" if error else ("interrupted" if raw.get("done") is False else "done")
    message = Message(
        chat=chat,
        message_id=message_id,
        parent=parent,
        role=str(raw.get("role") or "")[:32],
        model=str(raw.get("model") or "")[:255],
        status=status,
        content=content or "",
        events=[{"type": "status", "data": d} for d in _list(raw.get("statusHistory"))],
        sources=_list(raw.get("sources")),
        files=_list(raw.get("files")),
        embeds=_list(raw.get("embeds")),
        usage=raw.get("usage") if isinstance(raw.get("usage"), dict) else None,
        error=error,
        data=data,
    )
    if (created := _moment(raw.get("timestamp"))) is not None:
        message.created_at = created
    message.save()
    return message


def forwards(apps, schema_editor):
    Chat = apps.get_model("chat", "Chat")
    Message = apps.get_model("chat", "Message")
    for chat in Chat.objects.iterator():
        document = chat.chat if isinstance(chat.chat, dict) else {}
        rows = {}
        for message_id, raw in _nodes(document):
            rows[message_id] = _row(Message, chat, message_id, raw, rows.get(raw.get("parentId")))
        history = document.get("history") if isinstance(document.get("history"), dict) else {}
        current = str(history.get("currentId") or "")
        if current not in rows:
            current = next(reversed(rows), "")
        if current:
            Chat.objects.filter(pk=chat.pk).update(current_message_id=current)


def backwards(apps, schema_editor):
    # The documents still hold every message; the rows go with their table.
    pass


class Migration(migrations.Migration):
    dependencies = [("chat", "0003_messages")]

    operations = [migrations.RunPython(forwards, backwards)]
