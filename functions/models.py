"""Functions (plugins stored as Python source) and their immutable revisions."""

import keyword

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse


def validate_function_id(value: str) -> None:
    """Require a lower-case Python identifier, as Open WebUI does."""
    if not value.isidentifier() or keyword.iskeyword(value):
        raise ValidationError(
            "The id must be a valid Python identifier (letters, digits and underscores, "
            "not starting with a digit).",
            code="invalid_id",
        )
    if value != value.lower():
        raise ValidationError("The id must be lower case.", code="invalid_id")


class FunctionType(models.TextChoices):
    PIPE = "pipe", "Pipe"
    FILTER = "filter", "Filter"
    ACTION = "action", "Action"
    # Tools arrive in their own issue; the column is a free CharField so adding
    # a kind needs no data migration.


class Function(models.Model):
    id = models.CharField(primary_key=True, max_length=128, validators=[validate_function_id])
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=16, choices=FunctionType.choices)
    content = models.TextField()
    # {"description": str, "manifest": frontmatter dict, "toggle"?: bool}, the
    # Open WebUI shape, so exports move between the two systems unchanged.
    meta = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    is_global = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="functions_created",
    )
    current_revision = models.ForeignKey(
        "FunctionRevision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The last failure to load the stored code (at activation or at run time);
    # empty when the last load succeeded. Never disables the function by itself.
    load_error = models.TextField(blank=True, default="")
    load_error_at = models.DateTimeField(null=True, blank=True)
    # Seconds one call may run in a worker; empty: FNPLATFORM_CALL_TIMEOUT.
    call_timeout = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.1)],
        help_text="Seconds a call may run before it fails; empty: the server default.",
    )
    # A function runs in workers of its own, which never hold another function's code,
    # valves or calls; functions staff put in one trust group share their workers.
    trust_group = models.SlugField(
        max_length=64,
        blank=True,
        default="",
        help_text="Functions in the same trust group share worker processes (and so can "
        "read each other's code, valves and calls). Empty: workers of its own.",
    )
    # Where the requirements of the current source are installed (None: the server's
    # own packages satisfy them, or there are none).
    environment = models.ForeignKey(
        "RequirementEnv",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="functions",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    def get_absolute_url(self) -> str:
        return reverse("admin:functions_function_change", args=[self.id])

    @property
    def description(self) -> str:
        return str((self.meta or {}).get("description") or "")

    @property
    def manifest(self) -> dict:
        return dict((self.meta or {}).get("manifest") or {})

    @property
    def dom_id(self) -> str:
        return f"function-{self.id}"


class FunctionRevision(models.Model):
    """One saved version of a function's source. Never changed after creation."""

    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    content = models.TextField()
    sha256 = models.CharField(max_length=64, db_index=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.CharField(max_length=255, blank=True, default="")
    # What the loader found: kind, features, frontmatter, requirements, warnings.
    load_result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["function", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["function", "number"], name="unique_revision_number"),
        ]

    def __str__(self) -> str:
        return f"{self.function_id} r{self.number}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("Function revisions are immutable; create a new one instead.")
        super().save(*args, **kwargs)


class ModelSettings(models.Model):
    """Per-model wiring: filters and actions beyond the global ones, and who may use it.

    `model_id` is what clients send as `model`: a pipe id, `<pipe>.<sub>` for a
    manifold entry, or an upstream model id. No row means defaults: global
    filters and actions only, usable by everyone.
    """

    model_id = models.CharField(max_length=255, unique=True)
    filters = models.ManyToManyField(
        Function, blank=True, related_name="+", limit_choices_to={"type": FunctionType.FILTER}
    )
    default_filter_ids = models.JSONField(
        default=list, blank=True, help_text="Toggle filters that start switched on."
    )
    actions = models.ManyToManyField(
        Function, blank=True, related_name="+", limit_choices_to={"type": FunctionType.ACTION}
    )
    allowed_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    allowed_groups = models.ManyToManyField("auth.Group", blank=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "model settings"
        verbose_name_plural = "model settings"

    def __str__(self) -> str:
        return self.model_id


class FunctionHealth(models.Model):
    """How a function has been failing at run time, and whether it is quarantined.

    A function whose calls keep crashing or hanging its worker is quarantined: its
    calls fail fast with the reason until staff release it. Never a silent disable.
    """

    function = models.OneToOneField(Function, on_delete=models.CASCADE, related_name="health")
    # The most recent failures, newest last: [{"at", "kind", "message", "traceback"}].
    failures = models.JSONField(default=list, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_traceback = models.TextField(blank=True, default="")
    last_failure_at = models.DateTimeField(null=True, blank=True)
    quarantined_at = models.DateTimeField(null=True, blank=True)
    quarantine_reason = models.TextField(blank=True, default="")

    class Meta:
        verbose_name_plural = "function health"

    def __str__(self) -> str:
        return f"health of {self.function_id}"

    @property
    def is_quarantined(self) -> bool:
        return self.quarantined_at is not None


class RequirementEnv(models.Model):
    """An environment holding one set of requirements, shared by every function asking
    for exactly that set; layered over the server's packages, installed in the background."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        INSTALLING = "installing", "Installing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    # sha256 of the normalised requirement set and the Python version.
    key = models.CharField(primary_key=True, max_length=64)
    requirements = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    log = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "requirements environment"

    def __str__(self) -> str:
        return f"{', '.join(self.requirements)} ({self.get_status_display().lower()})"
