"""Chat models. Upstream connections: OpenAI-compatible endpoints whose models users chat with.

Chats, files and memories hold what Open WebUI keeps in its own tables, in its
shapes, so the `open_webui.models.*` shims plugins use can read and write them.
The chat pages issue builds on them.
"""

import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


def validate_base_url(value: str) -> None:
    """Require an http(s) URL with a host and no query or fragment."""
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValidationError(
            "Enter an http:// or https:// URL, such as http://127.0.0.1:11434/v1.",
            code="invalid_base_url",
        )
    if parts.query or parts.fragment:
        raise ValidationError(
            "The base URL cannot have a query or fragment.", code="invalid_base_url"
        )


def clean_model_ids(value) -> list[str]:
    """Return the allow-list as unique, stripped, non-empty ids in their given order."""
    if value in (None, ""):
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValidationError(
            {"model_ids": ["The model allow-list must be a list of model ids."]},
            code="invalid_model_ids",
        )
    return list(dict.fromkeys(v.strip() for v in value if v.strip()))


class Connection(models.Model):
    """An OpenAI-compatible upstream (Ollama, vLLM, llama.cpp server, OpenAI) staff registered."""

    name = models.CharField(max_length=255)
    # The OpenAI-compatible base, /v1 included: {base_url}/models, {base_url}/chat/completions.
    base_url = models.CharField(max_length=500, validators=[validate_base_url])
    # A Fernet token of {"key": ...} from valves.crypto; empty when there is no key.
    # Never holds the plaintext: only chat.services.connections reads or writes it.
    api_key_encrypted = models.TextField(blank=True, default="")
    # Optional allow-list of upstream model ids; empty means every model it lists.
    model_ids = models.JSONField(default=list, blank=True)
    timeout = models.FloatField(
        default=60.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(3600)],
        help_text="Seconds to wait for the upstream (between stream chunks when streaming).",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Stored normalised so "{base_url}/models" never gains a double slash.
        self.name = (self.name or "").strip()
        self.base_url = (self.base_url or "").strip().rstrip("/")
        self.model_ids = clean_model_ids(self.model_ids)
        if not self.name:
            raise ValidationError(
                {"name": ValidationError("The name cannot be empty.", code="blank")}
            )

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)

    @property
    def dom_id(self) -> str:
        return f"connection-{self.pk}"


def new_id() -> str:
    """A uuid4 string: Open WebUI's ids are strings, and plugins pass them around as such."""
    return str(uuid.uuid4())


def empty_chat() -> dict:
    """Open WebUI's chat document for a chat with no messages yet."""
    return {
        "title": "New Chat",
        "models": [],
        "messages": [],
        "history": {"messages": {}, "currentId": None},
        "files": [],
    }


class Chat(models.Model):
    """A user's conversation.

    `chat` is Open WebUI's chat document: {"title", "models", "messages",
    "history": {"messages": {id: message}, "currentId"}, "files"}. Messages
    live in it (not in rows of their own) so upstream-shaped code that edits the
    document keeps working; `title` is copied out of it for listing.
    """

    # Not a UUIDField: plugins and clients send ids as free strings.
    id = models.CharField(primary_key=True, max_length=255, default=new_id, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chats"
    )
    title = models.CharField(max_length=255, default="New Chat")
    chat = models.JSONField(default=empty_chat, blank=True)
    # Open WebUI's free-form chat meta (tags and the like).
    meta = models.JSONField(default=dict, blank=True)
    archived = models.BooleanField(default=False)
    pinned = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["user", "-updated_at"], name="chat_user_recent")]

    def __str__(self) -> str:
        return self.title

    @property
    def dom_id(self) -> str:
        return f"chat-{self.id}"


class File(models.Model):
    """An uploaded or generated file, as Open WebUI's file table holds it."""

    id = models.CharField(primary_key=True, max_length=255, default=new_id, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="files"
    )
    filename = models.CharField(max_length=255)
    # Relative to the upload folder (open_webui.config.UPLOAD_DIR), so the data
    # folder can move; empty for files that exist only as extracted `data`.
    path = models.CharField(max_length=1024, blank=True, default="")
    hash = models.CharField(max_length=128, blank=True, default="")
    # Extracted content and processing state, e.g. {"content": "...", "status": "completed"}.
    data = models.JSONField(default=dict, blank=True)
    # {"name", "content_type", "size", ...} plus whatever the uploader attached.
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.filename

    @property
    def dom_id(self) -> str:
        return f"file-{self.id}"


class Memory(models.Model):
    """One thing a user asked to be remembered across chats (Open WebUI's memories)."""

    id = models.CharField(primary_key=True, max_length=255, default=new_id, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memories"
    )
    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        verbose_name_plural = "memories"

    def __str__(self) -> str:
        return self.content[:80]

    @property
    def dom_id(self) -> str:
        return f"memory-{self.id}"
