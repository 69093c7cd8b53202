"""Routes that carry no session: what sandboxed frames of the chat page load."""

from django.urls import path

from chat import sandbox, sandbox_execute

app_name = "sandbox"

urlpatterns = [
    path("embed/<str:token>/", sandbox.embed, name="embed"),
    path("execute/<str:token>/", sandbox_execute.execute_frame, name="execute"),
]
