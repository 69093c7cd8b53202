"""The admin door: upstream connections (forms and actions translated into service
calls), and users' chats, files and memories (to look at and delete).

The API key is write-only here: the form never renders it back, an empty field
keeps the stored key, and only the services encrypt and store it. Chats are
deleted through chat.services.chats, as every other door deletes them.
"""

import asyncio

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages

from chat.models import Chat, Connection, File, Memory, Message
from chat.services import connections as services
from chat.services.chats import chat_delete
from chat.services.connections import UpstreamConnection, UpstreamListing
from valves.crypto import SecretsDecryptError

MODEL_FIELDS = ["name", "base_url", "model_ids", "timeout", "is_active"]


class ConnectionAdminForm(forms.ModelForm):
    api_key = forms.CharField(
        label="API key",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_api_key = forms.BooleanField(label="Clear the stored API key", required=False)
    model_ids = forms.CharField(
        label="Model allow-list",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One model id per line (or comma-separated). Empty offers every model it lists.",
    )

    class Meta:
        model = Connection
        fields = [
            "name",
            "base_url",
            "api_key",
            "clear_api_key",
            "model_ids",
            "timeout",
            "is_active",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.has_api_key:
            self.fields["api_key"].help_text = "A key is set. Leave empty to keep it."
        else:
            self.fields["api_key"].help_text = "Not set."
        if not self.is_bound:
            self.initial["model_ids"] = "\n".join(self.instance.model_ids or [])

    def clean_model_ids(self) -> list[str]:
        text = self.cleaned_data.get("model_ids") or ""
        return [item.strip() for item in text.replace(",", "\n").splitlines() if item.strip()]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("api_key") and data.get("clear_api_key"):
            self.add_error("api_key", "Either enter a new API key or clear it, not both.")
        return data


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionAdminForm
    list_display = ["name", "base_url", "is_active", "allow_list", "has_api_key", "timeout"]
    list_filter = ["is_active"]
    search_fields = ["name", "base_url"]
    actions = ["test_connection"]

    @admin.display(description="Model allow-list")
    def allow_list(self, obj: Connection) -> str:
        return f"{len(obj.model_ids)} model(s)" if obj.model_ids else "all"

    @admin.display(description="API key", boolean=True)
    def has_api_key(self, obj: Connection) -> bool:
        return obj.has_api_key

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # Nothing to clear on a connection without a key.
        if obj is None or not obj.has_api_key:
            fields = [name for name in fields if name != "clear_api_key"]
        return fields

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {name: data[name] for name in MODEL_FIELDS}
        if change:
            saved = services.connection_update(
                user=request.user,
                connection=obj,
                api_key=data["api_key"],
                clear_api_key=data.get("clear_api_key", False),
                **fields,
            )
        else:
            saved = services.connection_create(user=request.user, api_key=data["api_key"], **fields)
        # The admin goes on to log and redirect with obj; give it what the service saved.
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        services.connection_delete(user=request.user, connection=obj)

    def delete_queryset(self, request, queryset):
        for connection in queryset:
            services.connection_delete(user=request.user, connection=connection)

    @admin.action(description="Test connection (list its models)", permissions=["change"])
    def test_connection(self, request, queryset):
        upstreams = []
        for connection in queryset:
            try:
                upstreams.append(services.upstream_for(connection))
            except SecretsDecryptError as exc:
                self.message_user(request, f"{connection.name}: {exc.messages[0]}", messages.ERROR)
        listings = async_to_sync(list_each)(upstreams)
        for upstream, listing in zip(upstreams, listings, strict=True):
            if listing.errors:
                error = listing.errors[0]["error"]
                self.message_user(request, f"{upstream.name}: {error}", messages.ERROR)
            else:
                count = len(listing.models)
                self.message_user(request, f"{upstream.name}: {count} model(s).", messages.SUCCESS)


async def list_each(upstreams: list[UpstreamConnection]) -> list[UpstreamListing]:
    """List each upstream's models on its own, fresh and concurrently."""
    return await asyncio.gather(
        *(services.upstream_models(refresh=True, connections=[u]) for u in upstreams)
    )


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Users' own data, written by plugins and chats: staff may look and delete, not edit."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class MessageInline(admin.TabularInline):
    model = Message
    fields = ("message_id", "parent", "role", "model", "status", "short_content", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(description="Content")
    def short_content(self, obj: Message) -> str:
        return obj.content if len(obj.content) <= 200 else obj.content[:200] + "…"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Chat)
class ChatAdmin(_ReadOnlyAdmin):
    list_display = ("title", "user", "archived", "pinned", "updated_at")
    list_filter = ("archived", "pinned")
    search_fields = ("id", "title", "user__username")
    inlines = [MessageInline]

    def delete_model(self, request, obj):
        chat_delete(chat=obj)

    def delete_queryset(self, request, queryset):
        for chat in queryset:
            chat_delete(chat=chat)


@admin.register(File)
class FileAdmin(_ReadOnlyAdmin):
    list_display = ("filename", "user", "created_at")
    search_fields = ("id", "filename", "user__username")


@admin.register(Memory)
class MemoryAdmin(_ReadOnlyAdmin):
    list_display = ("id", "user", "updated_at")
    search_fields = ("content", "user__username")
