"""The form of the remotes import (hosts/views/remotes.py): the tool's files, uploaded or pasted."""

from __future__ import annotations

from django import forms

from ..domain.remotes import MAX_FILE_BYTES, CLIConfig, RemotesError, parse_server_certs


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (Django's documented way: the widget allows it, the field
    cleans each)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(item, initial) for item in files]


def _text(upload, pasted: str, what: str) -> str:
    """An uploaded file's text (at most MAX_FILE_BYTES), else what was pasted."""
    if upload is None:
        return (pasted or "").strip() and pasted
    data = upload.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise forms.ValidationError(
            f"{what} is larger than {MAX_FILE_BYTES // 1024} KiB: not the tool's file."
        )
    return data.decode("utf-8", "replace")


class ImportRemotesForm(forms.Form):
    config_file = forms.FileField(label="config.yml", required=False)
    config_text = forms.CharField(
        label="…or paste config.yml",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
    )
    servercert_files = MultipleFileField(
        label="Server certificates (servercerts/*.crt)",
        required=False,
        help_text="Each file named after its remote, as the tool names them: d2.crt for remote d2.",
    )
    servercerts_text = forms.CharField(
        label="…or paste them",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text="The remote's name on a line, then its certificate (-----BEGIN CERTIFICATE----- …); repeat.",
    )
    client_cert_file = forms.FileField(label="client.crt", required=False)
    client_cert_text = forms.CharField(
        label="…or paste client.crt",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
    )
    client_key_file = forms.FileField(label="client.key", required=False)
    # Never rendered back into a page: kept encrypted in the session between the two steps.
    client_key_text = forms.CharField(
        label="…or paste client.key",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            config_yml = _text(data.get("config_file"), data.get("config_text", ""), "config.yml")
            if not config_yml:
                raise forms.ValidationError("Upload or paste the tool's config.yml.")
            certs = parse_server_certs(data.get("servercerts_text", ""))
            for upload in data.get("servercert_files") or []:
                name = upload.name.rsplit("/", 1)[-1].removesuffix(".crt")
                certs[name] = _text(upload, "", upload.name)
            self.config = CLIConfig(
                source="an upload",
                config_yml=config_yml,
                server_certs=certs,
                client_cert=_text(
                    data.get("client_cert_file"), data.get("client_cert_text", ""), "client.crt"
                ),
                client_key=_text(data.get("client_key_file"), data.get("client_key_text", ""), "client.key"),
            )
        except RemotesError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data
