"""Form fields for what people type as text: config as `key = value` lines, devices as
`lxc config device add` lines.  Every form that takes them uses these (one parser each)."""

from __future__ import annotations

import shlex

from django import forms


def _lines(text: str):
    """(line number, line) for every line that says something (not blank, not a # comment)."""
    for number, line in enumerate((text or "").splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line


class ConfigField(forms.CharField):
    """`key = value` per line -> {key: value}; a value may be empty ("unset")."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}))
        super().__init__(**kwargs)

    def clean(self, value) -> dict[str, str]:
        config: dict[str, str] = {}
        for number, line in _lines(super().clean(value)):
            key, sep, text = line.partition("=")
            if not sep:
                raise forms.ValidationError(f"line {number}: expected key = value")
            if not key.strip():
                raise forms.ValidationError(f"line {number}: the key is empty")
            config[key.strip()] = text.strip()
        return config


class DevicesField(forms.CharField):
    """`NAME TYPE key=value ...` per line (as `lxc config device add`) -> {name: {type, key: value}}."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}))
        super().__init__(**kwargs)

    def clean(self, value) -> dict[str, dict[str, str]]:
        devices: dict[str, dict[str, str]] = {}
        for number, line in _lines(super().clean(value)):
            try:
                words = shlex.split(line)
            except ValueError as exc:
                raise forms.ValidationError(f"line {number}: {exc}") from exc
            if len(words) < 2 or "=" in words[0] or "=" in words[1]:
                raise forms.ValidationError(f"line {number}: expected NAME TYPE key=value ...")
            name, kind = words[0], words[1]
            if name in devices:
                raise forms.ValidationError(f"line {number}: device {name} is given twice")
            device = {"type": kind}
            for word in words[2:]:
                key, sep, text = word.partition("=")
                if not sep or not key:
                    raise forms.ValidationError(f"line {number}: {word!r} is not key=value")
                device[key] = text
            devices[name] = device
        return devices
