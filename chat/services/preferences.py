"""What the chat pages remember for a user between chats."""

from chat.models import ChatPreferences


def default_model_set(*, user, model_id: str) -> None:
    """Remember `model_id` as the model the user's new chats start with."""
    ChatPreferences.objects.update_or_create(
        user_id=user.pk, defaults={"default_model": str(model_id)[:255]}
    )
