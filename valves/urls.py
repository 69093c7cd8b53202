from django.urls import path

from valves import views

app_name = "valves"

urlpatterns = [
    path("", views.list_user_valves, name="list"),
    path("<str:function_id>/", views.edit_user_valves, name="edit"),
]
