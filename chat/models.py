"""Chat models. Upstream connections: OpenAI-compatible endpoints whose models users chat with.

Chats, messages, files and memories hold what Open WebUI keeps in its own tables,
in its shapes, so the `open_webui.models.*` shims plugins use can read and write
them. Only chat.services.chats, and chat.services.answers for the answers runs
write, change chats and messages.
"""

import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


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

    `chat` is Open WebUI's chat document: {"title", "models", "params", "files",
    "history": {"messages": {id: message}, "currentId"}, "messages", ...}. Its
    messages are Message rows: "history" and "messages" in the stored document are
    a copy the services rewrite from the rows whenever a message changes (runs: when
    they end), so the document read raw stays whole; readers go through
    chat.selectors.chat_document, which builds them from the rows. `title` and
    `current_message_id` are copied out of the document for listing.
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
    # history.currentId: the message the conversation shows last (its branch).
    current_message_id = models.CharField(max_length=255, blank=True, default="")
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

    @property
    def tag_names(self) -> list[str]:
        """The chat's tags (Open WebUI's meta["tags"]) that are names to show."""
        tags = self.meta.get("tags") if isinstance(self.meta, dict) else None
        return [t for t in tags if isinstance(t, str) and t] if isinstance(tags, list) else []


class MessageStatus(models.TextChoices):
    STREAMING = "streaming"
    DONE = "done"
    STOPPED = "stopped"
    ERROR = "error"
    # Its run's server process died (or stopped) before the answer ended.
    INTERRUPTED = "interrupted"


class Message(models.Model):
    """One message of a chat: a node of Open WebUI's history tree.

    The columns are the server's record of it; `data` is Open WebUI's message dict
    as clients and plugins wrote it, in its key order, for the keys that have no
    column ("annotation", "modelName", ...). A key that has a column is kept in
    `data` with a null value, only to say the message has it: the column holds
    the value (chat.services.history renders the dict). Only chat.services.chats
    and chat.services.answers write messages.
    """

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages")
    # Open WebUI's message id: the client's, unique within its chat only.
    message_id = models.CharField(max_length=255)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # "user", "assistant", "system"; empty for a message a plugin wrote without one.
    role = models.CharField(max_length=32, blank=True, default="")
    # The model that answered (assistant messages).
    model = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.DONE
    )
    content = models.TextField(blank=True, default="")
    # What plugins emitted during the turn ({"type", "data"}, canonical types), except
    # the events that edit the content ("message", "replace"): those are in `content`.
    events = models.JSONField(default=list, blank=True)
    sources = models.JSONField(default=list, blank=True)
    files = models.JSONField(default=list, blank=True)
    embeds = models.JSONField(default=list, blank=True)
    usage = models.JSONField(null=True, blank=True)
    # Open WebUI's {"content": "..."} for an answer that failed.
    error = models.JSONField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    # While streaming: the control channel of the run manager that runs it, and until
    # when that manager vouches it is alive (it renews this; past it, the run's
    # process is taken for dead and the message is marked interrupted).
    runner = models.CharField(max_length=255, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Insertion order is Open WebUI's childrenIds order.
        ordering = ["chat", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["chat", "message_id"], name="message_id_per_chat")
        ]
        indexes = [
            models.Index(
                fields=["lease_expires_at"],
                name="message_streaming_lease",
                condition=models.Q(status="streaming"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.role or 'message'} {self.message_id}"

    @property
    def dom_id(self) -> str:
        return f"message-{self.pk}"

    @property
    def content_dom_id(self) -> str:
        return f"message-{self.pk}-content"


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


class ChatPreferences(models.Model):
    """What the chat pages remember of a user: the model a new chat starts with."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_preferences"
    )
    default_model = models.CharField(max_length=255, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "chat preferences"

    def __str__(self) -> str:
        return f"{self.user}: {self.default_model or '(none)'}"


class DialogKind(models.TextChoices):
    """The `__event_call__` types that ask the user (Open WebUI's names)."""

    INPUT = "input"
    CONFIRMATION = "confirmation"
    EXECUTE = "execute"


class DialogStatus(models.TextChoices):
    PENDING = "pending"
    ANSWERED = "answered"
    # Nobody answered in time, or whatever waited for the answer is gone.
    EXPIRED = "expired"
    # The user said no (Cancel, Escape).
    CANCELLED = "cancelled"


class Dialog(models.Model):
    """A plugin's question to the user (`__event_call__` "input", "confirmation" or
    "execute") about one answer of a chat: a record, so any of the user's pages on
    the chat shows it, now or later, and the first answer wins. Only
    chat.services.dialogs writes dialogs."""

    id = models.CharField(primary_key=True, max_length=64, default=new_id, editable=False)
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="dialogs")
    # The Open WebUI id of the message (the answer) it belongs to.
    message_id = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dialogs"
    )
    function_id = models.CharField(max_length=128, blank=True, default="")
    kind = models.CharField(max_length=16, choices=DialogKind.choices)
    # The request's data, as the plugin sent it (input: placeholder, value and
    # Open WebUI's `type`, "password" say; execute: the code).
    title = models.TextField(blank=True, default="")
    message = models.TextField(blank=True, default="")
    placeholder = models.TextField(blank=True, default="")
    value = models.TextField(blank=True, default="")
    input_type = models.CharField(max_length=32, blank=True, default="")
    code = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=16, choices=DialogStatus.choices, default=DialogStatus.PENDING
    )
    # What the plugin got back (a password input's is not kept once it got it).
    answer = models.JSONField(null=True, blank=True)
    # The channel of the process listener that waits for the answer (wake-ups of a
    # waiter in another process go there), and, for a run's question, the run
    # manager's channel that ran it: a dialog of a run that is no longer streaming
    # under that runner has no one to answer, and expires.
    waiter = models.CharField(max_length=255, blank=True, default="")
    runner = models.CharField(max_length=255, blank=True, default="")
    # An "execute" script the plugin emitted (`__event_emitter__`) rather than asked
    # for: nothing waits for its value, and its run or action ending does not end it.
    emitted = models.BooleanField(default=False)
    # The page (its tab id, chat.consumers) that runs an "execute" script: one page
    # only, so its side effects (a download, say) happen once.
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(
                fields=["chat", "created_at"],
                name="dialog_pending_per_chat",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def dom_id(self) -> str:
        return f"dialog-{self.id}"
