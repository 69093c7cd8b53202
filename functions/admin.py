"""The admin door for functions: it translates forms and actions into service calls.

The admin never writes Function or FunctionRevision rows itself; the services
check the code, keep revisions and refuse what cannot load.
"""

from collections.abc import Callable
from functools import partial

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html

from fnplatform.permissions import has_perm
from functions import admin_views
from functions.forms import FunctionAdminForm
from functions.models import Function, FunctionHealth, ModelSettings, RequirementEnv
from functions.services import environments, transfer
from functions.services import functions as services
from functions.services.health import health_release, health_summary

SERVICE_ERRORS = (ValidationError, PermissionDenied)
MAIN_FIELDS = ["id", "name", "description", "content", "call_timeout", "trust_group", "note"]
STATUS_FIELDS = [
    "type",
    "is_active",
    "is_global",
    "requirements_status",
    "created_by",
    "created_at",
    "updated_at",
]


@admin.register(Function)
class FunctionAdmin(admin.ModelAdmin):
    form = FunctionAdminForm
    list_display = [
        "name",
        "id",
        "type",
        "is_active",
        "is_global",
        "revision",
        "updated_at",
        "has_load_error",
        "health_status",
    ]
    list_filter = ["type", "is_active", "is_global"]
    search_fields = ["id", "name", "meta__description"]
    list_select_related = ["current_revision", "health"]
    actions = [
        "activate",
        "deactivate",
        "make_global",
        "make_not_global",
        "export_json",
        "clone",
        "release_quarantine",
    ]

    @admin.display(description="Revision", ordering="current_revision__number")
    def revision(self, obj: Function):
        return obj.current_revision.number if obj.current_revision else None

    @admin.display(description="Requirements")
    def requirements_status(self, obj: Function):
        env = obj.environment
        if env is None:
            return environments.status_text(None)
        url = reverse("admin:functions_requirementenv_change", args=[env.pk])
        return format_html(
            '{} ({}) <a href="{}">pip log</a>',
            ", ".join(env.requirements),
            environments.status_text(env),
            url,
        )

    @admin.display(description="Load error", boolean=True, ordering="load_error")
    def has_load_error(self, obj: Function) -> bool:
        return bool(obj.load_error)

    @admin.display(description="Health", ordering="health__quarantined_at")
    def health_status(self, obj: Function):
        try:
            health = obj.health
        except FunctionHealth.DoesNotExist:
            health = None
        summary = health_summary(health)
        return format_html(
            '<span class="health health-{}" title="{}">{}</span>',
            summary.state,
            summary.detail,
            summary.text,
        )

    # The change form

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": MAIN_FIELDS})]
        return [(None, {"fields": MAIN_FIELDS}), ("Status", {"fields": STATUS_FIELDS})]

    def get_readonly_fields(self, request, obj=None):
        # The id names the plugin's module and its valves, so it is fixed once created.
        return [] if obj is None else ["id", *STATUS_FIELDS]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.saver = request.user  # its check loads the code for the staff member saving it
        return form

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        for key in ("template", "draft"):
            initial.pop(key, None)
        return {**initial, **admin_views.add_form_prefill(request)}

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {
            "user": request.user,
            "name": data["name"],
            "content": data["content"],
            "meta": {**(obj.meta or {}), "description": data["description"]},
            "call_timeout": data.get("call_timeout"),
            "trust_group": data.get("trust_group") or "",
        }
        if change:
            services.function_update(function=obj, note=data["note"], **fields)
        else:
            services.function_create(id=data["id"], note=data["note"] or "Created", **fields)
            admin_views.forget_draft(request)
        # The admin goes on to log and redirect with obj; give it what the service saved.
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        services.function_delete(user=request.user, function=obj)

    def delete_queryset(self, request, queryset):
        for function in queryset:
            services.function_delete(user=request.user, function=function)

    # Actions

    def _apply(self, request, queryset, call: Callable, done: str) -> None:
        """Call a service per function; report each refusal and count the successes."""
        succeeded = 0
        for function in queryset:
            try:
                call(user=request.user, function=function)
            except SERVICE_ERRORS as exc:
                self.message_user(
                    request, f"{function.id}: {admin_views.reason(exc)}", messages.ERROR
                )
            else:
                succeeded += 1
        if succeeded:
            self.message_user(request, f"{succeeded} function(s) {done}.", messages.SUCCESS)

    @admin.action(description="Activate selected functions", permissions=["change"])
    def activate(self, request, queryset):
        call = partial(services.function_set_active, active=True)
        self._apply(request, queryset, call, "activated")

    @admin.action(description="Deactivate selected functions", permissions=["change"])
    def deactivate(self, request, queryset):
        call = partial(services.function_set_active, active=False)
        self._apply(request, queryset, call, "deactivated")

    @admin.action(description="Make selected functions global", permissions=["change"])
    def make_global(self, request, queryset):
        call = partial(services.function_set_global, is_global=True)
        self._apply(request, queryset, call, "made global")

    @admin.action(description="Make selected functions not global", permissions=["change"])
    def make_not_global(self, request, queryset):
        call = partial(services.function_set_global, is_global=False)
        self._apply(request, queryset, call, "made not global")

    @admin.action(description="Release from quarantine", permissions=["change"])
    def release_quarantine(self, request, queryset):
        self._apply(request, queryset, health_release, "released from quarantine")

    @admin.action(description="Export selected functions as JSON", permissions=["view"])
    def export_json(self, request, queryset):
        items = transfer.function_export_items(
            user=request.user, functions=queryset, include_valves=False
        )
        return admin_views.download(items, admin_views.export_filename())

    @admin.action(description="Clone the selected function", permissions=["add"])
    def clone(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one function to clone.", messages.ERROR)
            return None
        function = queryset.get()
        new_id = admin_views.free_id(f"{function.id}_copy")
        try:
            copy = services.function_clone(user=request.user, function=function, new_id=new_id)
        except SERVICE_ERRORS as exc:
            self.message_user(request, f"{function.id}: {admin_views.reason(exc)}", messages.ERROR)
            return None
        self.message_user(request, f"Cloned {function.id} as {copy.id}.", messages.SUCCESS)
        return redirect(admin_views.admin_url(self, "change", copy.pk))

    # Custom pages

    def get_urls(self):
        # Ours go first: the default "<path:object_id>/" patterns would swallow them.
        return [
            self._route("templates/", admin_views.template_picker, "templates"),
            self._route("import/", admin_views.import_functions, "import"),
            self._route("export/", admin_views.export_all, "export_all"),
            self._route("<path:object_id>/revisions/", admin_views.revision_history, "revisions"),
            self._route("<path:object_id>/revisions/diff/", admin_views.revision_diff, "diff"),
            self._route(
                "<path:object_id>/revisions/<int:number>/rollback/",
                admin_views.revision_rollback,
                "rollback",
            ),
            self._route("<path:object_id>/valves/", admin_views.edit_valves, "valves"),
            self._route("<path:object_id>/clone/", admin_views.clone_function, "clone"),
            self._route("<path:object_id>/export/", admin_views.export_one, "export"),
            *super().get_urls(),
        ]

    def _route(self, pattern: str, view: Callable, name: str):
        """A URL for one of admin_views, staff-only and CSRF-protected via admin_view."""
        opts = self.opts
        wrapped = self.admin_site.admin_view(partial(view, model_admin=self))
        return path(pattern, wrapped, name=f"{opts.app_label}_{opts.model_name}_{name}")


@admin.register(ModelSettings)
class ModelSettingsAdmin(admin.ModelAdmin):
    """Which filters and actions a model has beyond the global ones, and who may use it."""

    list_display = ("model_id", "restricted", "updated_at")
    search_fields = ("model_id",)
    filter_horizontal = ("filters", "actions", "allowed_users", "allowed_groups")

    @admin.display(boolean=True, description="Restricted")
    def restricted(self, obj: ModelSettings) -> bool:
        return obj.allowed_users.exists() or obj.allowed_groups.exists()


@admin.register(RequirementEnv)
class RequirementEnvAdmin(admin.ModelAdmin):
    """Install status and pip log of each requirement set; installs run in the background."""

    list_display = ["short_key", "requirement_list", "status", "used_by", "finished_at"]
    list_filter = ["status"]
    fields = [
        "key",
        "requirements",
        "status",
        "here",
        "used_by",
        "started_at",
        "finished_at",
        "pip_log",
    ]
    readonly_fields = fields
    actions = ["reinstall"]

    def has_add_permission(self, request):
        return False  # made by saving a function that needs one

    def has_change_permission(self, request, obj=None):
        return False  # read-only page: the "reinstall" action is the one write

    @admin.display(description="Key")
    def short_key(self, obj: RequirementEnv) -> str:
        return obj.key[:12]

    @admin.display(description="Requirements")
    def requirement_list(self, obj: RequirementEnv) -> str:
        return ", ".join(obj.requirements)

    @admin.display(description="Functions")
    def used_by(self, obj: RequirementEnv) -> str:
        return ", ".join(obj.functions.values_list("id", flat=True)) or "-"

    @admin.display(description="On this host")
    def here(self, obj: RequirementEnv) -> str:
        return environments.status_text(obj)

    @admin.display(description="pip log")
    def pip_log(self, obj: RequirementEnv):
        return format_html('<pre class="pip-log">{}</pre>', obj.log or "(nothing yet)")

    def has_reinstall_permission(self, request) -> bool:
        # What environment_reinstall asks for, so the action shows only to those it serves.
        return has_perm(request.user, "functions.change_function")

    @admin.action(description="Install the selected environments again", permissions=["reinstall"])
    def reinstall(self, request, queryset):
        try:
            for env in queryset:
                environments.environment_reinstall(user=request.user, environment=env)
        except SERVICE_ERRORS as exc:
            self.message_user(request, admin_views.reason(exc), messages.ERROR)
            return
        self.message_user(
            request, f"{queryset.count()} environment(s) queued to install.", messages.SUCCESS
        )
