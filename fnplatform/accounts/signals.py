"""Sign-in tokens end with the password they were given for, as Django sessions do."""

from typing import Any


def revoke_tokens_on_password_change(sender, instance, **kwargs: Any) -> None:
    """Before a user is saved with a new password hash, revoke their sign-in tokens."""
    from fnplatform.accounts.services import signin_tokens_revoke_for

    if instance.pk is None:
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if stored is not None and stored != instance.password:
        signin_tokens_revoke_for(user=instance)
