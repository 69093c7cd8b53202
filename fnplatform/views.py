"""Site-wide pages: the landing page and the health endpoint."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from fnplatform.health import health_report


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Render the landing page; a signed-in user goes on to the chat."""
    if request.user.is_authenticated:
        return redirect("chat:new")
    return render(request, "home.html")


# Async, so the channel-layer round trip awaits without holding a worker thread.
@never_cache
@require_GET
async def health(request: HttpRequest) -> JsonResponse:
    """Answer 200 while the process is up; the body says which dependencies are reachable."""
    return JsonResponse(await health_report())
