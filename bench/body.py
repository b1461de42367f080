"""Benchmark: what one anonymous client with a large request body costs the daphne process.

    .venv/bin/python bench/body.py [--mib 256]

Starts the dashboard under a real daphne in a subprocess (its own SQLite file; no LXD needed)
and sends, as an anonymous client that stops sending as soon as the server answers:
  - a POST of --mib MiB to /accounts/login/ with a Content-Length header;
  - the same POST with a chunked body (no Content-Length);
  - for reference, a PUT to the plain-HTTP upload route just under its limit
    (DASHBOARD_MAX_HTTP_UPLOAD_BYTES), which daphne reads whole before Django refuses it.
Memory is the peak RSS of a freshly started daphne above its RSS just before the request (see
bench/files.py).
Target: at most 10 MiB for each of the first two.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

from bench.files import PeakRSS  # noqa: E402
from tests.raw_http import post_body  # noqa: E402
from tests.support import LiveDashboard  # noqa: E402

MiB = 1024 * 1024
TARGET_RSS_MIB = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    args = parser.parse_args()
    size = args.mib * MiB

    from django.conf import settings

    upload_limit = settings.DASHBOARD_MAX_HTTP_UPLOAD_BYTES
    upload = "/hosts/h/instances/c/files/upload/?path=/root/f"
    cases = [
        (f"POST {args.mib} MiB, Content-Length", "/accounts/login/", size, False, "POST", True),
        (f"POST {args.mib} MiB, chunked", "/accounts/login/", size, True, "POST", True),
        (f"PUT {upload_limit // MiB} MiB to the upload route", upload, upload_limit, False, "PUT", False),
    ]
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-body-") as tmp:
        server = LiveDashboard(Path(tmp))
        server.start()
        try:
            for label, path, length, chunked, method, targeted in cases:
                # a fresh daphne per case: memory freed by one case would hide the next one's
                server.stop()
                server.serve()
                with PeakRSS(server.proc.pid) as rss:
                    reply = post_body(server.port, path, length, chunked=chunked, method=method, timeout=120)
                verdict = ""
                if targeted:
                    passed = rss.growth_mib <= TARGET_RSS_MIB
                    ok = ok and passed
                    verdict = f" (target <= {TARGET_RSS_MIB} MiB: {'ok' if passed else 'MISSED'})"
                print(
                    f"{label}: daphne RSS +{rss.growth_mib:.1f} MiB{verdict}; client got "
                    f"{reply.status or 'no answer'} after sending {reply.sent / MiB:.1f} MiB"
                )
        finally:
            server.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
