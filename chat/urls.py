from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("", views.new_chat, name="new"),
    path("model-panel/", views.model_panel, name="model_panel"),
    path("sidebar/", views.sidebar, name="sidebar"),
    path("c/<str:chat_id>/", views.chat_page, name="chat"),
    path("c/<str:chat_id>/model/", views.choose_model, name="choose_model"),
    path("c/<str:chat_id>/filters/<str:filter_id>/", views.switch_filter, name="switch_filter"),
    path("c/<str:chat_id>/rename/", views.rename_chat, name="rename"),
    path("c/<str:chat_id>/delete/", views.delete_chat, name="delete"),
    # Message and action ids go in the query or the form: clients may choose any string.
    path("c/<str:chat_id>/edit/", views.edit_message, name="edit_message"),
    path("c/<str:chat_id>/action/", views.run_action, name="run_action"),
    path("files/<str:file_id>/", views.download_file, name="file"),
]
