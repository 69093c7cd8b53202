"""Account settings page: the user's own API keys, created and revoked in place."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from fnplatform.accounts.forms import ApiKeyForm
from fnplatform.accounts.models import ApiKey
from fnplatform.accounts.services import api_key_create, api_key_list_for, api_key_revoke

TEMPLATE = "accounts/settings.html"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _render_settings(
    request: HtmxHttpRequest,
    *,
    form: ApiKeyForm | None = None,
    new_key: str = "",
    new_api_key: ApiKey | None = None,
) -> HttpResponse:
    """Render the page, or just its #api-keys partial for htmx requests."""
    context = {
        "api_keys": api_key_list_for(user=request.user),
        "form": form or ApiKeyForm(),
        "new_key": new_key,
        "new_api_key": new_api_key,
    }
    template = f"{TEMPLATE}#api-keys" if request.htmx else TEMPLATE
    return render(request, template, context)


@login_required
@require_GET
def show_settings(request: HtmxHttpRequest) -> HttpResponse:
    """Show the user's settings: plugin settings link and API keys."""
    return _render_settings(request)


# never_cache: the response carries the plaintext key, which no cache should keep.
@never_cache
@login_required
@require_POST
def create_api_key(request: HtmxHttpRequest) -> HttpResponse:
    """Create a key for the user and show its plaintext in this response only."""
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _render_settings(request, form=form)
    try:
        api_key, key = api_key_create(user=request.user, **form.cleaned_data)
    except ValidationError as exc:
        form.add_error(None, exc.messages)
        return _render_settings(request, form=form)
    # Rendered straight into this response, not redirected, so the plaintext is
    # never parked in a session or message cookie.
    return _render_settings(request, new_key=key, new_api_key=api_key)


@login_required
@require_POST
def revoke_api_key(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Revoke one of the user's own keys."""
    # Only the user's own keys are found, so another user's key is a 404, not a 403.
    api_key = get_object_or_404(api_key_list_for(user=request.user), pk=pk)
    api_key_revoke(user=request.user, api_key=api_key)
    if request.htmx:
        return _render_settings(request)
    return redirect("accounts:settings")
