"""Sortable tables over a queryset (the audit trail): ?sort=KEY&dir=asc|desc in the URL, beside
the filters, so a sorted, filtered view can be bookmarked and shared. The fleet sorts its rows in
memory (hosts/fleet/rows.py FleetQuery); the header links look the same (partials/sort_header.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    field: str | None = None  # None: not sortable


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

    def headers(self, params) -> list[dict]:
        """One dict per column: label, and for a sortable one the link (the other params kept,
        the page dropped) and aria-sort on the column sorted by."""
        kept = {k: v for k, v in params.items() if k not in ("sort", "dir", "page") and v}
        out = []
        for c in self.columns:
            head = {"key": c.key, "label": c.label}
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
