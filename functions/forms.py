"""Forms for the functions admin: field shapes only; every write goes through the services."""

import json

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django_ace import AceWidget

from functions.models import Function, validate_function_id
from functions.services.functions import UNSAVED_ID, function_check_source
from functions.services.loader import SourceError

# An export of many functions is bigger than one plugin file.
JSON_IMPORT_SIZE_FACTOR = 10


def code_editor() -> AceWidget:
    return AceWidget(
        mode="python",
        theme="twilight",
        width="100%",
        height="600px",
        showprintmargin=False,
        usesofttabs=True,
        tabsize=4,
    )


class FunctionAdminForm(forms.ModelForm):
    """Add/change form; clean() loads the source so a broken plugin is never saved."""

    description = forms.CharField(
        required=False, max_length=1000, widget=forms.TextInput(attrs={"class": "vTextField"})
    )
    note = forms.CharField(
        label="Change note",
        required=False,
        max_length=255,
        help_text="Optional; stored with the new revision.",
        widget=forms.TextInput(attrs={"class": "vTextField"}),
    )

    class Meta:
        model = Function
        fields = ["id", "name", "description", "content", "call_timeout", "trust_group", "note"]
        widgets = {"content": code_editor()}
        help_texts = {
            "id": "A lower-case Python identifier; it cannot be changed later.",
            "name": "Leave empty to use the frontmatter title.",
        }

    saver = None  # the staff member saving (set by the admin): host data at load is theirs

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The name can come from the source's frontmatter, so it is filled in clean().
        self.fields["name"].required = False
        # Whitespace is code: a stripped trailing newline would make every save a new revision.
        self.fields["content"].strip = False
        if not self.instance._state.adding:
            self.fields["description"].initial = self.instance.description

    def clean(self):
        cleaned = super().clean()
        content = cleaned.get("content")
        if not content:
            return cleaned
        try:
            report = function_check_source(
                content=content, function_id=self._function_id(), user=self.saver
            )
        except SourceError as exc:
            # messages[0] is "Type at line N: message": the exact reason and place.
            self.add_error("content", exc.messages[0])
            return cleaned
        if not cleaned.get("name"):
            cleaned["name"] = report["frontmatter"].get("title") or self._function_id()
        return cleaned

    def clean_content(self) -> str:
        # Browsers submit textareas with CRLF line endings; store the source as written.
        return self.cleaned_data["content"].replace("\r\n", "\n").replace("\r", "\n")

    def clean_id(self) -> str:
        return self.cleaned_data["id"].strip().lower()

    def _function_id(self) -> str:
        if not self.instance._state.adding:
            return self.instance.pk
        candidate = self.cleaned_data.get("id") or ""
        try:
            validate_function_id(candidate)
        except ValidationError:
            # The id error is reported on its own field; still check the code.
            return UNSAVED_ID
        if Function.objects.filter(pk=candidate).exists():
            # Taken (the id field says so): new code checked under that id would count
            # as that function's own and could read its source and valves.
            return UNSAVED_ID
        return candidate


class ImportUrlForm(forms.Form):
    url = forms.URLField(
        label="URL",
        assume_scheme="https",
        help_text="A raw file, or a GitHub blob or tree URL.",
        widget=forms.URLInput(attrs={"size": 80}),
    )


def _check_size(upload, limit: int) -> None:
    if upload.size > limit:
        raise ValidationError(f"The file is larger than the {limit // 1024} KiB limit.")


class ImportFileForm(forms.Form):
    file = forms.FileField(label="Python file", help_text="A single .py plugin file.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.endswith(".py"):
            raise ValidationError("Choose a .py file.")
        _check_size(upload, settings.FUNCTIONS_IMPORT_MAX_BYTES)
        try:
            self.cleaned_data["content"] = upload.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError("The file is not UTF-8 text.") from exc
        return upload


class ImportJsonForm(forms.Form):
    file = forms.FileField(label="Export file", help_text="A JSON export from Open WebUI.")
    overwrite = forms.BooleanField(
        label="Overwrite existing",
        required=False,
        help_text="Replace functions whose id already exists (as a new revision).",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        _check_size(upload, settings.FUNCTIONS_IMPORT_MAX_BYTES * JSON_IMPORT_SIZE_FACTOR)
        try:
            items = json.loads(upload.read().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValidationError(f"The file is not valid JSON: {exc}") from exc
        # Open WebUI exports a list; a single exported object is accepted too.
        self.cleaned_data["items"] = [items] if isinstance(items, dict) else items
        return upload


class CloneForm(forms.Form):
    new_id = forms.CharField(label="New id", max_length=128, validators=[validate_function_id])
    name = forms.CharField(max_length=255, required=False)
