from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "fnplatform.accounts"
    label = "accounts"
    verbose_name = "Accounts and API keys"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_migrate, pre_save

        from fnplatform import state
        from fnplatform.accounts.signals import revoke_tokens_on_password_change

        pre_save.connect(revoke_tokens_on_password_change, sender=get_user_model())
        # Once per migrate (its signal is sent for each app): the generation's triggers,
        # on the tables of every app, which all exist by then.
        post_migrate.connect(state.install, sender=self, dispatch_uid="fnplatform.state")
