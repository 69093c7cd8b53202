"""Chat models. Upstream connections: OpenAI-compatible endpoints whose models users chat with.

Chats and messages arrive with the chat pages issue.
"""

from urllib.parse import urlsplit

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
