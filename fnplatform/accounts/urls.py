from django.urls import path

from fnplatform.accounts import views

app_name = "accounts"

urlpatterns = [
    path("settings/", views.show_settings, name="settings"),
    path("keys/", views.create_api_key, name="create_key"),
    path("keys/<int:pk>/revoke/", views.revoke_api_key, name="revoke_key"),
]
