from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"

    def ready(self) -> None:
        from chat.signals import interrupt_stale_answers

        post_migrate.connect(interrupt_stale_answers, sender=self)
