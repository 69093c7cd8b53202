"""The sandbox's documents: plugin code the chat page frames and never runs itself.

A dialog's "execute" script (chat.services.dialogs) runs in an iframe the page
draws with `sandbox="allow-scripts allow-downloads"` and no allow-same-origin: an
opaque origin, so no cookies, no storage, no reach into the page (`parent.document`
throws). Its document comes from `execute_frame`, a route that never reads or
needs the session: the URL's signed token (`execute_token`) names the dialog, and
it serves only a dialog that still waits for its script. Its own CSP sandboxes it
even when opened outside a frame, gives it no network (connect-src 'none'), lets
only the page that framed it frame it, and is the one place where code may be made
from a string ('unsafe-eval': Open WebUI's `new Function(...)` wrapping, in
static/js/sandbox_execute.js); the chat page's own CSP keeps no eval.
"""

from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.middleware.csp import get_nonce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET

from chat.models import Dialog, DialogKind, DialogStatus

_SALT = "chat.sandbox.execute"
# A token outlives any dialog's wait; what it names must still be pending as well.
_TOKEN_SECONDS = 7 * 24 * 3600

SANDBOX_CSP = {
    "default-src": [CSP.NONE],
    "script-src": [CSP.NONCE, CSP.UNSAFE_EVAL],
    "style-src": [CSP.UNSAFE_INLINE],
    "img-src": ["data:", "blob:"],
    "media-src": ["data:", "blob:"],
    "connect-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.NONE],
    "frame-ancestors": [CSP.SELF],
    "sandbox": ["allow-scripts", "allow-downloads"],
}


def execute_token(dialog_id: str) -> str:
    """The signed token of an execute dialog's frame URL."""
    return signing.dumps(str(dialog_id), salt=_SALT)


def execute_frame_url(dialog_id: str) -> str:
    return reverse("sandbox:execute", args=[execute_token(dialog_id)])


@require_GET
@csp_override(SANDBOX_CSP)
def execute_frame(request: HttpRequest, token: str) -> HttpResponse:
    """The document of an execute dialog's sandboxed frame: its code, and the runner.
    It reads no session and no user (plain responses, no context processors)."""
    try:
        dialog_id = signing.loads(token, salt=_SALT, max_age=_TOKEN_SECONDS)
    except signing.BadSignature:
        return HttpResponseNotFound("No such script.", content_type="text/plain")
    code = (
        Dialog.objects.filter(pk=dialog_id, kind=DialogKind.EXECUTE, status=DialogStatus.PENDING)
        .values_list("code", flat=True)
        .first()
    )
    if code is None:
        return HttpResponseNotFound(
            "This script no longer waits to run.", content_type="text/plain"
        )
    context = {
        "code": code,
        "nonce": str(get_nonce(request)),
        "parent_origin": f"{request.scheme}://{request.get_host()}",
    }
    response = HttpResponse(render_to_string("chat/sandbox_execute.html", context))
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
