"""Read-only views of stored valve rows; editing goes through the function's valves form.

The encrypted `secrets` column is never shown, only whether it holds anything.
Deleting a row is allowed: it resets those valves to the plugin's defaults.
"""

from django.contrib import admin
from django.http import HttpRequest

from valves.models import FunctionValves, UserValves


class ValvesRowAdmin(admin.ModelAdmin):
    exclude = ("secrets",)
    list_select_related = ("function",)

    @admin.display(description="secrets stored", boolean=True)
    def secrets_stored(self, obj) -> bool:
        return bool(obj.secrets)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Writes must go through valves.services, which validates and encrypts.
        return False


@admin.register(FunctionValves)
class FunctionValvesAdmin(ValvesRowAdmin):
    list_display = ("function", "secrets_stored", "updated_by", "updated_at")
    readonly_fields = ("function", "data", "secrets_stored", "updated_by", "updated_at")
    search_fields = ("function__id", "function__name")


@admin.register(UserValves)
class UserValvesAdmin(ValvesRowAdmin):
    list_display = ("function", "user", "secrets_stored", "updated_at")
    list_select_related = ("function", "user")
    list_filter = ("function",)
    readonly_fields = ("function", "user", "data", "secrets_stored", "updated_at")
    search_fields = ("function__id", "user__username")
