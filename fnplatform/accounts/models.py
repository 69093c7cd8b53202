"""API keys and sign-in tokens: shown once at creation, stored only as a SHA-256 hash."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class ApiKey(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True, default="")
    # The first characters of the key, kept so people can tell keys apart.
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Open WebUI gives each account one API key (/api/v1/auths/api_key); this marks it.
    is_account_key = models.BooleanField(
        default=False,
        help_text="The account's key of Open WebUI's /api/v1/auths/api_key (one live per user).",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(is_account_key=True, revoked_at__isnull=True),
                name="accounts_one_live_account_key_per_user",
            )
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def dom_id(self) -> str:
        return f"apikey-{self.pk}"


class SigninToken(models.Model):
    """A bearer token from POST /api/v1/auths/signin: it expires, and sign-out revokes it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="signin_tokens"
    )
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "sign-in token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
