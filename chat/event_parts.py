"""What plugins' events add to a message, as its template draws them: the numbered
sources (citations), the files, the embeds' frames, the usage line, and
notifications' toasts. Plain data from the stored (or streamed) columns; the
templates escape every string, and only http(s) URLs (or our own routes) ever
become a link, an image or a frame.

Citations follow Open WebUI's Citations component: each document of a `source`
event is a citation of the source its metadata names (`metadata[i].source`, else
`source.id`, else its URL or name), the documents of one source gathered under one
number, numbered in order of first appearance; `[1]` in the answer is the first.
"""

import re
from typing import Any

from django.urls import NoReverseMatch, reverse

from chat.markdown import safe_icon_src
from chat.sandbox import embed_digest, embed_src, embed_url, is_web_url

MAX_SNIPPET = 2000
MAX_CITATIONS = 100
_FILE_URL = re.compile(r"^/api/v1/files/([^/?#]+)(?:/content)?/?(?:[?#].*)?$")
_SAFE_ID = re.compile(r"[^/\x00-\x20\x7f]{1,255}")


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(*values: Any) -> str:
    """The first of `values` that is a non-empty string (numbers count), stripped."""
    for value in values:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value).strip()
            if text:
                return text
    return ""


def web_url(value: Any) -> str | None:
    """`value` if it is an http(s) URL with a host (something to link to), else None."""
    text = _text(value)
    if not text or re.search(r"[\x00-\x20\x7f]", text):
        return None
    return text if is_web_url(text) else None


# Sources.


def citations_of(sources: Any) -> list[dict[str, Any]]:
    """The message's sources as numbered citations: [{"n", "name", "url", "documents"}],
    `url` an http(s) URL or None, `documents` the texts cited from it."""
    citations: dict[str, dict[str, Any]] = {}
    for source in sources if isinstance(sources, list) else []:
        if not isinstance(source, dict) or source.get("type") == "code_execution":
            continue
        about = _dict(source.get("source"))
        documents = source.get("document") if isinstance(source.get("document"), list) else []
        metadata = source.get("metadata") if isinstance(source.get("metadata"), list) else []
        for index, document in enumerate(documents or [None]):
            meta = _dict(metadata[index]) if index < len(metadata) else {}
            key = _text(meta.get("source"), about.get("id"), about.get("url"), about.get("name"))
            key = key or f"source {len(citations) + 1}"
            url = web_url(meta.get("url")) or web_url(about.get("url")) or web_url(key)
            entry = citations.get(key)
            if entry is None:
                if len(citations) >= MAX_CITATIONS:
                    break
                name = _text(meta.get("name"), about.get("name"), url, key)
                entry = citations[key] = {"name": name, "url": url, "documents": []}
            text = _text(document)
            if text:
                entry["documents"].append(text[:MAX_SNIPPET])
    return [{"n": n, **entry} for n, entry in enumerate(citations.values(), 1)]


# Files.


def _file_id(entry: dict, file: dict, url: str) -> str:
    file_id = _text(entry.get("id"), file.get("id"))
    if not file_id and (match := _FILE_URL.match(url)):
        file_id = match.group(1)
    return file_id if _SAFE_ID.fullmatch(file_id) else ""


def file_links(files: Any) -> list[dict[str, Any]]:
    """The message's files: [{"name", "href", "external", "image"}]. A stored file (by
    id, or an /api/v1/files/<id> URL) links to the owner-only download route; an
    http(s) URL is linked as it is; anything else is named, not linked. `image` is
    what an image file shows as its picture (None: none)."""
    links = []
    for entry in files if isinstance(files, list) else []:
        if not isinstance(entry, dict):
            continue
        file = _dict(entry.get("file"))
        meta = _dict(file.get("meta")) | _dict(entry.get("meta"))
        url = _text(entry.get("url"))
        file_id = _file_id(entry, file, url)
        tail = url.rsplit("/", 1)[-1] if web_url(url) else ""
        name = _text(entry.get("name"), entry.get("filename"), file.get("filename"))
        name = name or _text(meta.get("name"), tail) or "File"
        kind = _text(entry.get("type"), meta.get("content_type"))
        is_image = kind == "image" or kind.startswith("image/")
        href, external = None, False
        if file_id:
            try:
                href = reverse("chat:file", kwargs={"file_id": file_id})
            except NoReverseMatch:
                href = None
        elif web_url(url):
            href, external = url, True
        image = None
        if is_image:
            image = f"{href}?inline=1" if href and not external else safe_icon_src(url)
        links.append({"name": name[:255], "href": href, "external": external, "image": image})
    return links


# Embeds.


def embed_frames(embeds: Any, *, chat_id: str, message_id: str, key: str) -> list[dict]:
    """The message's embeds as sandboxed frames: [{"id", "src", "title", "external"}].
    Each HTML embed is loaded from the session-less sandbox route (chat.sandbox), an
    http(s) URL embed as it is; the id names the embed (its place and digest)."""
    frames = []
    if not chat_id:
        return frames
    for n, embed in enumerate(embeds if isinstance(embeds, list) else [], 1):
        if not isinstance(embed, str) or not embed.strip():
            continue
        src = embed_src(chat_id=chat_id, message_id=message_id, embed=embed)
        frames.append(
            {
                "id": f"embed-{key}-{n}-{embed_digest(embed)[:12]}",
                "src": src,
                "title": f"Embedded content {n}",
                "external": embed_url(embed) is not None,
            }
        )
    return frames


# Usage.


def usage_text(usage: Any) -> str:
    """A short line of the tokens an answer used ("" when unknown)."""
    usage = _dict(usage)
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    total = usage.get("total_tokens")
    numbers = [n for n in (prompt, completion, total) if isinstance(n, int) and n >= 0]
    if not numbers:
        return ""
    if isinstance(prompt, int) and isinstance(completion, int):
        total = total if isinstance(total, int) else prompt + completion
        return f"{total} tokens ({prompt} in, {completion} out)"
    return f"{max(numbers)} tokens"


# Notifications.

LEVELS = {"info": 6000, "success": 6000, "warning": 10000, "error": 15000}


def toast_of(event: Any) -> dict[str, Any] | None:
    """A notification event as a toast: {"level", "content", "timeout"} (ms before it
    hides itself), None for anything else."""
    if not isinstance(event, dict) or event.get("type") != "notification":
        return None
    data = _dict(event.get("data"))
    level = data.get("type") if data.get("type") in LEVELS else "info"
    content = _text(data.get("content"), data.get("message"), data.get("title"))
    if not content:
        return None
    return {"level": level, "content": content[:2000], "timeout": LEVELS[level]}
