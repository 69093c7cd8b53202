"""Stored valve values: one global row per function, one row per user and function.

`data` holds the plain (non-secret) fields a staff member or user set explicitly;
`secrets` holds a Fernet token of the secret fields, so the raw column never
contains a plaintext secret. Validation against the plugin's own pydantic
classes happens in valves.services, on save and again on use.
"""

from django.conf import settings
from django.db import models


class FunctionValves(models.Model):
    function = models.OneToOneField(
        "functions.Function", on_delete=models.CASCADE, related_name="valves_row"
    )
    data = models.JSONField(default=dict, blank=True)
    secrets = models.TextField(blank=True, default="")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "function valves"
        verbose_name_plural = "function valves"

    def __str__(self) -> str:
        return f"valves of {self.function_id}"


class UserValves(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="user_valves"
    )
    function = models.ForeignKey(
        "functions.Function", on_delete=models.CASCADE, related_name="user_valves"
    )
    data = models.JSONField(default=dict, blank=True)
    secrets = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "user valves"
        verbose_name_plural = "user valves"
        constraints = [
            models.UniqueConstraint(fields=["user", "function"], name="unique_user_valves"),
        ]

    def __str__(self) -> str:
        return f"user valves of {self.function_id} for {self.user_id}"
