"""A host's hardware as `/1.0/resources` reports it, summed up for its page (no HTML)."""

from __future__ import annotations

from dataclasses import dataclass, field

SHOWN = 16  # disks, cards, GPUs listed (a host with more says how many more)


@dataclass
class Resources:
    architecture: str = ""
    cpu_models: list[str] = field(default_factory=list)
    sockets: int = 0
    cores: int = 0
    threads: int = 0
    memory_total: int = 0
    memory_used: int = 0
    disks: list[dict] = field(default_factory=list)
    cards: list[dict] = field(default_factory=list)
    gpus: list[dict] = field(default_factory=list)
    system: str = ""
    not_shown: int = 0

    @property
    def memory_percent(self) -> int | None:
        return round(100 * self.memory_used / self.memory_total) if self.memory_total else None


def _list(value) -> list[dict]:
    return [item for item in value or [] if isinstance(item, dict)]


def summarise(data: dict) -> Resources:
    cpu = data.get("cpu") or {}
    sockets = _list(cpu.get("sockets"))
    memory = data.get("memory") or {}
    disks = [
        {
            "id": d.get("id", ""),
            "model": d.get("model", "") or d.get("type", ""),
            "size": int(d.get("size") or 0),
            "type": d.get("type", ""),
            "removable": bool(d.get("removable")),
        }
        for d in _list((data.get("storage") or {}).get("disks"))
    ]
    cards = [
        {
            "driver": c.get("driver", ""),
            "vendor": c.get("vendor", "") or c.get("vendor_id", ""),
            "product": c.get("product", "") or c.get("product_id", ""),
            "ports": [
                {"id": p.get("id", ""), "address": p.get("address", ""), "up": bool(p.get("link_detected"))}
                for p in _list(c.get("ports"))
            ],
        }
        for c in _list((data.get("network") or {}).get("cards"))
    ]
    gpus = [
        {"driver": g.get("driver", ""), "vendor": g.get("vendor", ""), "product": g.get("product", "")}
        for g in _list((data.get("gpu") or {}).get("cards"))
    ]
    system = data.get("system") or {}
    total = len(disks) + len(cards) + len(gpus)
    return Resources(
        architecture=str(cpu.get("architecture") or ""),
        cpu_models=sorted({str(s.get("name")) for s in sockets if s.get("name")}),
        sockets=len(sockets),
        cores=sum(len(_list(s.get("cores"))) for s in sockets),
        threads=int(cpu.get("total") or 0),
        memory_total=int(memory.get("total") or 0),
        memory_used=int(memory.get("used") or 0),
        disks=disks[:SHOWN],
        cards=cards[:SHOWN],
        gpus=gpus[:SHOWN],
        system=" ".join(str(system.get(k) or "") for k in ("vendor", "product", "type")).strip(),
        not_shown=total - len(disks[:SHOWN]) - len(cards[:SHOWN]) - len(gpus[:SHOWN]),
    )
