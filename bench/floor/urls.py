from django.urls import path

from floor import views

urlpatterns = [
    path("health", views.health),
    path("api/chat/completions", views.completions),
]
