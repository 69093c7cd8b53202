"""Custom pages of the functions admin: templates, import/export, history, clone, valves.

Each view gets the FunctionAdmin as `model_admin` (FunctionAdmin.get_urls binds it and
wraps the view with admin_site.admin_view, so only active staff reach them and POSTs
are CSRF-checked), translates the request, and calls one service or selector.
"""

import json
import keyword
import re
import secrets
from functools import partial
from pathlib import Path

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from fnplatform.permissions import has_perm
from functions import selectors
from functions.forms import CloneForm, ImportFileForm, ImportJsonForm, ImportUrlForm
from functions.models import Function, FunctionRevision
from functions.services import functions as services
from functions.services import transfer
from functions.services.frontmatter import parse_frontmatter
from valves.forms import apply_field_errors, form_class_for, form_initial, form_values
from valves.services import (
    valves_options,
    valves_spec,
    valves_state_global,
    valves_update_global,
)

TEMPLATE_DIR = Path(__file__).resolve().parent / "plugin_templates"
TEMPLATE_KINDS = [
    ("pipe", "Pipe", "A model of its own: pipe() answers the chat."),
    ("manifold_pipe", "Manifold pipe", "Several models from one class: pipes() lists them."),
    ("filter", "Filter", "Rewrites requests and replies: inlet(), stream(), outlet()."),
    ("toggle_filter", "Toggle filter", "A filter that users switch on and off in the chat."),
    ("action", "Action", "A button under assistant messages: action()."),
]
DRAFTS_SESSION_KEY = "functions_admin_drafts"
# Drafts only carry source from the import page to the add form; a few suffice.
MAX_DRAFTS = 5
PAGE_TEMPLATE = "admin/functions/function/{}.html"


# Helpers shared by the views


def admin_url(model_admin, name: str, *args) -> str:
    opts = model_admin.opts
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{name}", args=args)


def render_page(model_admin, request: HttpRequest, page: str, title: str, **context):
    """Render one of our pages inside the admin chrome (header, sidebar, breadcrumbs)."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        "has_view_permission": model_admin.has_view_permission(request),
        **context,
    }
    return render(request, PAGE_TEMPLATE.format(page), context)


def require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def get_function(model_admin, request: HttpRequest, object_id: str) -> Function:
    try:
        function = selectors.function_get(id=unquote(object_id))
    except Function.DoesNotExist as exc:
        raise Http404(str(exc)) from exc
    require(model_admin.has_view_permission(request, function))
    return function


def reason(exc: Exception) -> str:
    """The human text of a service error, whatever its type."""
    return " ".join(getattr(exc, "messages", None) or [str(exc) or type(exc).__name__])


def download(items: list[dict], filename: str) -> HttpResponse:
    response = HttpResponse(json.dumps(items, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_filename() -> str:
    return f"functions-export-{timezone.localdate().isoformat()}.json"


def identifier_from(text: str) -> str:
    """Turn a title or file name into a function id candidate, as Open WebUI's editor does."""
    candidate = re.sub(r"[^a-z0-9_]+", "_", text.strip().lower()).strip("_")
    candidate = re.sub(r"_+", "_", candidate)
    if candidate[:1].isdigit():
        candidate = f"f_{candidate}"
    if keyword.iskeyword(candidate):
        candidate = f"{candidate}_"
    return candidate[:100] or "function"


def free_id(base: str) -> str:
    """Return base, or base2, base3... whichever no function uses yet."""
    taken = set(Function.objects.filter(id__startswith=base).values_list("id", flat=True))
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}{number}"
    return candidate


# Prefilling the add form (templates and imports)


def read_template(kind: str) -> str | None:
    if kind not in {slug for slug, _, _ in TEMPLATE_KINDS}:
        return None
    try:
        return (TEMPLATE_DIR / f"{kind}.py").read_text(encoding="utf-8")
    except OSError:
        return None


def draft_for(content: str, fallback_name: str) -> dict:
    """Initial add-form data for a source: name and id from its frontmatter title."""
    frontmatter = parse_frontmatter(content)
    name = frontmatter.get("title") or fallback_name
    return {
        "id": free_id(identifier_from(name)),
        "name": name,
        "description": frontmatter.get("description", ""),
        "content": content,
    }


def store_draft(request: HttpRequest, draft: dict) -> str:
    """Keep a draft in the session (the add form is a POST target) and return its token."""
    drafts = dict(request.session.get(DRAFTS_SESSION_KEY, {}))
    token = secrets.token_urlsafe(8)
    drafts[token] = draft
    # Dicts keep insertion order, so the oldest drafts are dropped first.
    request.session[DRAFTS_SESSION_KEY] = dict(list(drafts.items())[-MAX_DRAFTS:])
    return token


def add_form_prefill(request: HttpRequest) -> dict:
    """Initial data for the add form from ?template=<kind> or ?draft=<token>."""
    if kind := request.GET.get("template"):
        content = read_template(kind)
        if content is None:
            messages.warning(request, f"No template {kind!r} is available.")
            return {}
        return draft_for(content, kind.replace("_", " ").title())
    if token := request.GET.get("draft"):
        draft = request.session.get(DRAFTS_SESSION_KEY, {}).get(token)
        if draft is None:
            messages.warning(request, "That import draft has expired; import the file again.")
        return dict(draft or {})
    return {}


def forget_draft(request: HttpRequest) -> None:
    """Drop the draft an add form was opened with, once it is saved (it POSTs to its own URL)."""
    token = request.GET.get("draft")
    drafts = request.session.get(DRAFTS_SESSION_KEY, {})
    if token in drafts:
        request.session[DRAFTS_SESSION_KEY] = {k: v for k, v in drafts.items() if k != token}


def redirect_to_draft(model_admin, request: HttpRequest, draft: dict) -> HttpResponse:
    token = store_draft(request, draft)
    messages.info(request, "Review the imported code, then save to create the function.")
    return redirect(f"{admin_url(model_admin, 'add')}?draft={token}")


# Pages


def template_picker(request: HttpRequest, *, model_admin) -> HttpResponse:
    require(model_admin.has_add_permission(request))
    choices = []
    for slug, label, blurb in TEMPLATE_KINDS:
        content = read_template(slug)
        choices.append(
            {
                "slug": slug,
                "label": label,
                "blurb": blurb,
                "available": content is not None,
                "frontmatter": parse_frontmatter(content or ""),
                "content": content or "",
            }
        )
    return render_page(
        model_admin, request, "template_picker", "Add function from a template", choices=choices
    )


def import_url(model_admin, request: HttpRequest, form: ImportUrlForm) -> HttpResponse | None:
    try:
        fetched = transfer.fetch_source(user=request.user, url=form.cleaned_data["url"])
    except ValidationError as exc:
        form.add_error(None, exc)
        return None
    return redirect_to_draft(model_admin, request, draft_for(fetched.content, fetched.name))


def import_file(model_admin, request: HttpRequest, form: ImportFileForm) -> HttpResponse | None:
    name = Path(form.cleaned_data["file"].name).stem
    return redirect_to_draft(model_admin, request, draft_for(form.cleaned_data["content"], name))


def import_json(model_admin, request: HttpRequest, form: ImportJsonForm) -> HttpResponse | None:
    try:
        imported = transfer.function_import_items(
            user=request.user,
            items=form.cleaned_data["items"],
            overwrite=form.cleaned_data["overwrite"],
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return None
    ids = ", ".join(function.id for function in imported) or "nothing"
    messages.success(request, f"Imported {len(imported)} function(s): {ids}.")
    return redirect(admin_url(model_admin, "changelist"))


IMPORTERS = {
    "url": (ImportUrlForm, import_url),
    "py": (ImportFileForm, import_file),
    "json": (ImportJsonForm, import_json),
}


def import_functions(request: HttpRequest, *, model_admin) -> HttpResponse:
    """One page, three forms; the hidden `source` field says which one was sent."""
    require(model_admin.has_add_permission(request))
    sent = request.POST.get("source") if request.method == "POST" else None
    forms = {}
    for key, (form_class, _) in IMPORTERS.items():
        data = (request.POST, request.FILES) if key == sent else ()
        forms[key] = form_class(*data, prefix=key)
    if sent in forms and forms[sent].is_valid():
        response = IMPORTERS[sent][1](model_admin, request, forms[sent])
        if response is not None:
            return response
    return render_page(model_admin, request, "import", "Import functions", forms=forms)


def export_all(request: HttpRequest, *, model_admin) -> HttpResponse:
    require(model_admin.has_view_permission(request))
    items = transfer.function_export_items(
        user=request.user, functions=selectors.function_list(), include_valves=False
    )
    return download(items, export_filename())


def export_one(request: HttpRequest, object_id: str, *, model_admin) -> HttpResponse:
    function = get_function(model_admin, request, object_id)
    items = transfer.function_export_items(
        user=request.user, functions=[function], include_valves=False
    )
    return download(items, f"function-{function.id}-{timezone.localdate().isoformat()}.json")


def clone_function(request: HttpRequest, object_id: str, *, model_admin) -> HttpResponse:
    function = get_function(model_admin, request, object_id)
    require(model_admin.has_add_permission(request))
    initial = {"new_id": free_id(f"{function.id}_copy"), "name": f"{function.name} (copy)"}
    form = CloneForm(request.POST or None, initial=initial)
    if form.is_valid():
        try:
            clone = services.function_clone(
                user=request.user, function=function, **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Cloned {function.id} as {clone.id}.")
            return redirect(admin_url(model_admin, "change", clone.pk))
    return render_page(
        model_admin, request, "clone", f"Clone {function.name}", original=function, form=form
    )


# History


def revision_history(request: HttpRequest, object_id: str, *, model_admin) -> HttpResponse:
    function = get_function(model_admin, request, object_id)
    revisions = list(selectors.revision_list(function=function))
    return render_page(
        model_admin,
        request,
        "revisions",
        f"History of {function.name}",
        original=function,
        revisions=revisions,
        default_new=revisions[0].number if revisions else None,
        default_old=revisions[1].number if len(revisions) > 1 else None,
        has_change_permission=model_admin.has_change_permission(request, function),
    )


def _revision(function: Function, number: str | int | None) -> FunctionRevision:
    try:
        return selectors.revision_get(function=function, number=int(number or 0))
    except (ValueError, FunctionRevision.DoesNotExist) as exc:
        raise Http404(f"Function {function.id!r} has no revision {number!r}.") from exc


def diff_line_class(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "diff-file"
    if line.startswith("@@"):
        return "diff-hunk"
    return {"+": "diff-add", "-": "diff-del"}.get(line[:1], "diff-context")


def revision_diff(request: HttpRequest, object_id: str, *, model_admin) -> HttpResponse:
    function = get_function(model_admin, request, object_id)
    old = _revision(function, request.GET.get("old"))
    new = _revision(function, request.GET.get("new"))
    lines = selectors.revision_diff(old=old, new=new)
    return render_page(
        model_admin,
        request,
        "diff",
        f"{function.name}: revision {old.number} → {new.number}",
        original=function,
        old=old,
        new=new,
        lines=[(diff_line_class(line), line) for line in lines],
    )


@require_POST
def revision_rollback(request: HttpRequest, object_id: str, number: int, *, model_admin):
    function = get_function(model_admin, request, object_id)
    require(model_admin.has_change_permission(request, function))
    revision = _revision(function, number)
    try:
        function = services.function_rollback(
            user=request.user, function=function, revision=revision
        )
    except ValidationError as exc:
        messages.error(request, f"Cannot roll back: {reason(exc)}")
    else:
        number = function.current_revision.number
        messages.success(request, f"Rolled back to revision {revision.number} as r{number}.")
    return HttpResponseRedirect(admin_url(model_admin, "revisions", function.pk))


# Valves


def valves_form_class(function: Function, state, viewer):
    """Return the staff form for a function's Valves, or None without Valves. Raise SourceError."""
    spec = valves_spec(function=function)
    if spec is None:
        return None
    # The schema carries dynamic select options, resolved by the service.
    options = valves_options(function=function, viewer=viewer)
    return form_class_for(spec, secrets_set=state.secrets_set, options=options)


def save_valves(request: HttpRequest, function: Function, form) -> bool:
    values, clear = form_values(form)
    try:
        valves_update_global(user=request.user, function=function, values=values, clear=clear)
    except ValidationError as exc:
        apply_field_errors(form, exc)
        return False
    messages.success(request, f"Saved the valves of {function.name}.")
    return True


def edit_valves(request: HttpRequest, object_id: str, *, model_admin) -> HttpResponse:
    function = get_function(model_admin, request, object_id)
    # The same permission the API's valves endpoints ask for; saving needs the change
    # one, which valves_update_global checks.
    require(has_perm(request.user, "valves.view_functionvalves"))
    title = f"Valves of {function.name}"
    page = partial(render_page, model_admin, request, "valves", title, original=function)
    try:
        state = valves_state_global(function=function, check=True)
        form_class = valves_form_class(function, state, request.user)
    except ValidationError as exc:
        # Code that cannot load has no schema to build a form from; say why instead.
        return page(load_error=reason(exc))
    if form_class is None:
        return page(no_valves=True)
    posted = request.method == "POST"
    if posted:
        require(model_admin.has_change_permission(request, function))
    form = form_class(request.POST if posted else None, initial=form_initial(state))
    if posted and form.is_valid() and save_valves(request, function, form):
        return redirect(admin_url(model_admin, "valves", function.pk))
    # Stored values that no longer fit are listed, not raised, so they can be fixed here.
    return page(form=form, stored_errors=state.errors if not posted else {})
