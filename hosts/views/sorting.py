"""Sortable tables (the audit trail, images): ?sort=KEY&dir=asc|desc in the URL, beside
the filters, so a sorted, filtered view can be bookmarked and shared. The fleet sorts its rows in
memory (hosts/fleet/rows.py FleetQuery); the header links look the same (partials/sort_header.html).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    # a model field (for a queryset), a function of an item (for a list), None: not sortable
    field: str | Callable[[Any], Any] | None = None
    num: bool = False  # a number: right-aligned


@dataclass(frozen=True)
class Sorting:
    columns: tuple[Column, ...]
    key: str
    desc: bool

    @classmethod
    def from_params(cls, params, columns: tuple[Column, ...], default: str, desc: bool = True) -> Sorting:
        """An unknown column or direction falls back to the default: never an error."""
        sortable = {c.key for c in columns if c.field}
        key = params.get("sort", "")
        if key not in sortable:
            return cls(columns, default, desc)
        return cls(columns, key, params.get("dir") == "desc")

    def apply(self, queryset):
        field = next(c.field for c in self.columns if c.key == self.key)
        sign = "-" if self.desc else ""
        return queryset.order_by(sign + field, sign + "pk")

    def sorted(self, items: list) -> list:
        """A list sorted by the column's function (stable: ties keep their order)."""
        value = next(c.field for c in self.columns if c.key == self.key)
        return sorted(items, key=value, reverse=self.desc)

    def headers(self, params) -> list[dict]:
        """One dict per column: label, and for a sortable one the link (the other params kept,
        the page dropped) and aria-sort on the column sorted by."""
        kept = {k: v for k, v in params.items() if k not in ("sort", "dir", "page") and v}
        out = []
        for c in self.columns:
            head = {"key": c.key, "label": c.label, "num": c.num}
            if c.field:
                current = c.key == self.key
                desc = not self.desc if current else False
                head["url"] = "?" + urlencode({**kept, "sort": c.key, "dir": "desc" if desc else "asc"})
                if current:
                    head["aria_sort"] = "descending" if self.desc else "ascending"
            out.append(head)
        return out

    def params(self) -> dict[str, str]:
        return {"sort": self.key, "dir": "desc" if self.desc else "asc"}
