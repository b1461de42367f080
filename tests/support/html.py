"""Reading the dashboard's HTML as a browser would: cells by id, lazy loaders, forms."""

from __future__ import annotations

import re
from html.parser import HTMLParser


def loader_urls(html: str) -> list[str]:
    """The lazy per-host state requests the fleet page asks the browser to make."""
    return [url.replace("&amp;", "&") for url in re.findall(r'hx-get="(/fleet/state/[^"]+)"', html)]


def cell(html: str, dom_id: str) -> str:
    """The <td> (or <tr>) carrying `dom_id`, as text."""
    match = re.search(rf'<(td|tr) id="{re.escape(dom_id)}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no element with id {dom_id}"
    return match.group(0)


def form_fields(page: str, form_id: str) -> dict[str, list[str]]:
    """What a browser would submit from the form `form_id` of `page`, as it stands
    (checked boxes only, selected options only): for changing one field of an admin form."""

    class Parser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.inside = False
            self.select = ""
            self.textarea = ""
            self.fields: dict[str, list[str]] = {}

        def add(self, name: str, value: str) -> None:
            self.fields.setdefault(name, []).append(value)

        def handle_starttag(self, tag, attrs):
            a = {k: (v if v is not None else "") for k, v in attrs}
            if tag == "form":
                self.inside = a.get("id") == form_id
            if not self.inside or not a.get("name") and tag != "option":
                return
            if tag == "input":
                kind = a.get("type", "text")
                if kind in ("checkbox", "radio") and "checked" not in a:
                    return
                if kind not in ("submit", "button", "file"):
                    self.add(a["name"], a.get("value", "on" if kind == "checkbox" else ""))
            elif tag == "select":
                self.select = a["name"]
            elif tag == "option" and self.select and "selected" in a:
                self.add(self.select, a.get("value", ""))
            elif tag == "textarea":
                self.textarea = a["name"]
                self.add(self.textarea, "")

        def handle_endtag(self, tag):
            if tag == "form":
                self.inside = False
            elif tag == "select":
                self.select = ""
            elif tag == "textarea":
                value = self.fields[self.textarea][-1]
                self.fields[self.textarea][-1] = value[1:] if value.startswith("\n") else value
                self.textarea = ""

        def handle_data(self, data):
            if self.textarea:
                self.fields[self.textarea][-1] += data

    parser = Parser()
    parser.feed(page)
    if not parser.fields:
        raise AssertionError(f"no form {form_id!r} with fields on the page")
    return parser.fields
