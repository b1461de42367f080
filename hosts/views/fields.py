"""Form fields for what people type as text: config as `key = value` lines, devices as
`lxc config device add` lines, profile lists.  Every form that takes them uses these (one
parser each), and the `*_to_text` functions write what they read."""

from __future__ import annotations

import shlex

from django import forms

from ..lxd.names import DEVICE, PROFILE


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
            if error := DEVICE.error(name):
                raise forms.ValidationError(f"line {number}: {error}")
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


def devices_to_text(devices: dict) -> str:
    """Devices as DevicesField reads them back: `NAME TYPE key=value ...`, quoted where needed."""
    lines = []
    for name, spec in sorted((devices or {}).items()):
        spec = dict(spec or {})
        words = [name, str(spec.pop("type", "") or "none")]
        words += [f"{key}={value}" for key, value in sorted(spec.items())]
        lines.append(" ".join(shlex.quote(word) for word in words))
    return "\n".join(lines)


class ProfilesField(forms.CharField):
    """A profile list, comma-separated, in order -> [name, ...] (each checked against LXD's rule)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 2000)
        super().__init__(**kwargs)

    def clean(self, value) -> list[str]:
        names = [p.strip() for p in (super().clean(value) or "").split(",") if p.strip()]
        for name in names:
            if error := PROFILE.error(name):
                raise forms.ValidationError(error)
        if len(set(names)) != len(names):
            raise forms.ValidationError("a profile is listed twice")
        return names
