from django import forms

from ..models import validate_host_name
from .fields import ConfigField


class HostAddForm(forms.Form):
    AUTH_CHOICES = [
        ("none", "Already trusted / unix socket"),
        ("password", "Trust password (LXD 5.x)"),
        ("token", "Trust token (lxc config trust add)"),
    ]
    name = forms.CharField(
        max_length=63, validators=[validate_host_name], help_text="lower-case letters, digits and hyphens"
    )
    url = forms.CharField(
        label="Address",
        max_length=512,
        help_text="https://host:8443, host:port, or a unix socket path such as /var/lib/lxd/unix.socket",
    )
    auth = forms.ChoiceField(choices=AUTH_CHOICES, initial="password", widget=forms.RadioSelect)
    # Never rendered back into a page: the confirmation step keeps it server-side (views/hosts.py).
    secret = forms.CharField(label="Password or token", required=False, widget=forms.PasswordInput)
    fingerprint = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if data.get("auth") in ("password", "token") and not data.get("secret"):
            self.add_error("secret", "Give the trust password or token, or choose 'Already trusted'.")
        return data


class PendingHostForm(forms.Form):
    """The confirmation step of a registration: names what the server keeps, nothing more."""

    pending = forms.CharField(max_length=64, widget=forms.HiddenInput)


class ServerConfigForm(forms.Form):
    config = ConfigField(
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        help_text="One key = value per line. Remove a line to unset that key.",
    )
    etag = forms.CharField(widget=forms.HiddenInput, required=False)


class ConfirmForm(forms.Form):
    fingerprint = forms.CharField(max_length=100)


class RemoveHostForm(forms.Form):
    revoke = forms.BooleanField(
        required=False,
        initial=True,
        label="Also remove the dashboard's certificate from the host's trust store",
    )
