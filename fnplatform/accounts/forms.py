"""Forms for the account settings page."""

from django import forms

from fnplatform.accounts.models import ApiKey


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=ApiKey._meta.get_field("name").max_length,
        required=False,
        label="Key name",
        widget=forms.TextInput(attrs={"placeholder": "e.g. laptop script"}),
    )
