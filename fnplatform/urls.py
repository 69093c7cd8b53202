from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from fnplatform import views
from fnplatform.api import api, openai_api

urlpatterns = [
    path("", views.home, name="home"),
    path("health", views.health, name="health"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("v1/", openai_api.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("fnplatform.accounts.urls")),
    path("valves/", include("valves.urls")),
    path("chat/", include("chat.urls")),
    # Plugin code's own documents, framed by the chat page: no session (chat.sandbox_urls).
    path("sandbox/", include("chat.sandbox_urls")),
]
