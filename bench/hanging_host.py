"""Benchmark: how long the dashboard's pages take when a host hangs (the figure the tests no
longer assert: a wall-clock number is no test on a shared 2-core machine).

    LAB_ID=<id> .venv/bin/python bench/hanging_host.py [--rounds 3]

Starts the lab (bin/lab) and the dashboard under a real daphne in a subprocess (its own SQLite
file), registers lab daemon d2 over HTTPS, then points that host at a loopback server that
accepts TCP connections and never says a word.  Every page of (and about) that host is asked
for --rounds times by a logged-in client; the slowest answer per page is printed, with the
page timeout the dashboard is configured with (LXD_PAGE_TIMEOUT: connect, read).
Target: every page within 2 s (the bound tests/test_fleet.py and tests/test_faults.py asserted).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lab import start_lab  # noqa: E402
from tests.servers import hanging_server  # noqa: E402
from tests.support import LiveDashboard  # noqa: E402

HOST = "hung"
TARGET_SECONDS = 2.0
PAGES = [
    "/",
    "/hosts/",
    f"/hosts/{HOST}/",
    f"/fleet/state/{HOST}/",
    f"/hosts/{HOST}/instances/c1/",
    f"/hosts/{HOST}/instances/c1/files/?path=/",
    f"/hosts/{HOST}/instances/c1/snapshots/",
    f"/operations/?host={HOST}",
    f"/tasks/?host={HOST}",
    f"/instances/create/?host={HOST}",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    from django.conf import settings

    connect, read = settings.LXD_PAGE_TIMEOUT
    target = TARGET_SECONDS
    lab = start_lab(3)
    slowest: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-hanging-") as tmp, hanging_server() as address:
        server = LiveDashboard(Path(tmp))
        server.start()
        try:
            server.manage("addhost", HOST, lab.d2.url, "--token", lab.d2.trust_token("bench-hanging"))
            server.manage(
                "shell",
                "-c",
                f"from hosts.models import Host; Host.objects.filter(name={HOST!r})"
                f".update(endpoint='https://{address}')",
            )
            session = server.login()
            for _ in range(args.rounds):
                for page in PAGES:
                    started = time.monotonic()
                    response = session.get(page, timeout=120)
                    took = time.monotonic() - started
                    assert response.status_code != 500, (page, response.text[:300])
                    slowest[page] = max(slowest.get(page, 0.0), took)
        finally:
            server.stop()
            for cert in lab.d2.admin().certificates():
                if cert["name"] == "bench-hanging":
                    lab.d2.admin().delete_certificate(cert["fingerprint"])
    print(f"pages about a hung host (page timeout {connect:g} s + {read:g} s), slowest of {args.rounds}:")
    for page, took in slowest.items():
        print(f"  {took:5.2f} s  {page}")
    worst = max(slowest.values())
    verdict = "ok" if worst <= target else "MISSED"
    print(f"slowest page: {worst:.2f} s (target <= {target:g} s: {verdict})")
    return 0 if worst <= target else 1


if __name__ == "__main__":
    sys.exit(main())
