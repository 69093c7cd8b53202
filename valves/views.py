"""End users' own plugin settings (user valves): a list page and one form per function."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import trigger_client_event
from django_htmx.middleware import HtmxDetails

from functions.models import Function
from functions.selectors import function_get, function_usable_by
from valves.forms import ValvesForm, apply_field_errors, form_class_for, form_initial, form_values
from valves.services import (
    ValvesState,
    valves_functions_for,
    valves_options,
    valves_spec,
    valves_state_user,
    valves_update_user,
)

FORM_TEMPLATE = "valves/valves_form.html"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _usable_function_or_404(request: HtmxHttpRequest, function_id: str) -> Function:
    # A function the user may not use is a 404, so its existence is not revealed.
    try:
        function = function_get(id=function_id)
    except Function.DoesNotExist:
        raise Http404("No such function.") from None
    if not function_usable_by(user=request.user, function=function):
        raise Http404("No such function.")
    return function


def _user_valves_form(
    request: HtmxHttpRequest, function: Function, state: ValvesState, data=None
) -> ValvesForm | None:
    """Return the form for a function's UserValves, or None when there is none to show."""
    try:
        spec = valves_spec(function=function, user=True)
        if spec is None:
            return None
        options = valves_options(function=function, user=True, viewer=request.user)
    except ValidationError:
        return None  # the load error is already in state.errors
    form_class = form_class_for(spec, secrets_set=state.secrets_set, options=options)
    return form_class(data, initial=form_initial(state))


@login_required
@require_GET
def list_user_valves(request: HtmxHttpRequest) -> HttpResponse:
    functions = valves_functions_for(user=request.user)
    return render(request, "valves/valves_list.html", {"functions": functions})


def _save(request: HtmxHttpRequest, function: Function, form: ValvesForm) -> ValvesState | None:
    """Save a valid form through the service; on refusal put the errors on the form."""
    values, clear = form_values(form)
    try:
        return valves_update_user(user=request.user, function=function, values=values, clear=clear)
    except ValidationError as exc:
        apply_field_errors(form, exc)
        return None


@login_required
@require_http_methods(["GET", "POST"])
def edit_user_valves(request: HtmxHttpRequest, function_id: str) -> HttpResponse:
    function = _usable_function_or_404(request, function_id)
    state = valves_state_user(user=request.user, function=function, check=True)
    data = request.POST if request.method == "POST" else None
    form = _user_valves_form(request, function, state, data)
    saved = None
    if form is not None and form.is_bound and form.is_valid():
        saved = _save(request, function, form)
    if saved is not None:
        if not request.htmx:
            messages.success(request, f"Saved your settings for {function.name}.")
            return redirect("valves:edit", function_id=function.id)
        # A fresh form, so secret fields show their new set/clear state.
        state, form = saved, _user_valves_form(request, function, saved)
    context = {"function": function, "form": form, "state": state, "saved": saved is not None}
    template = f"{FORM_TEMPLATE}#valves-form" if request.htmx else FORM_TEMPLATE
    response = render(request, template, context)
    return trigger_client_event(response, "valves-saved") if saved is not None else response
