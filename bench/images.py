"""Benchmark: image copy from host to host and image import, through the dashboard and with `lxc`.

    LAB_ID=<id> .venv/bin/python bench/images.py [--mib 256] [--runs 6]

Starts the lab (bin/lab), builds a busybox image holding MIB MiB of random bytes (locally, never
downloaded), serves the dashboard under a real daphne in a subprocess (its own SQLite file) with
d2 registered over HTTPS (the source) and d1 over its unix socket (the target), then times, in
one run, pairs of the same transfer made both ways:
  - copy d2 -> d1: a POST to the dashboard's copy route (the dashboard asks d2 for a one-time
    secret and d1 pulls the image from d2 itself) vs `lxc image copy d2:<fp> local:` between the
    same two daemons (lxc also has d1 pull, with a secret);
  - import into d1: the page's websocket upload (tests/images_helpers.ws_import does what
    static/js/images.js does) vs `lxc image import FILE` over d1's unix socket.
The target's copy of the image is deleted before each transfer, and the two of a pair run in
turn in either order.  The throughput ratio is the median over the pairs (direct time /
dashboard time); memory is daphne's peak RSS above its RSS
just before the transfer (bench/files.py PeakRSS).  One summary line per figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.files import PeakRSS, timed  # noqa: E402
from tests.images_helpers import build_image, forget_image, sha256_of, ws_import  # noqa: E402
from tests.lab import start_lab  # noqa: E402
from tests.support import DashboardSession, LiveDashboard  # noqa: E402

MiB = 1024 * 1024
SOURCE, TARGET = "benchsrc", "benchdst"
COPY_RATIO, IMPORT_RATIO, TARGET_RSS_MIB = 0.9, 0.7, 30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=6)
    args = parser.parse_args()

    lab = start_lab(2)
    d1, d2 = lab.d1, lab.d2
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        tmp = Path(tmp)
        image = build_image(tmp / "bench.tar", lab.env["LAB_DIR"], release="bench", blob_mib=args.mib)
        size, fingerprint = image.stat().st_size, sha256_of(image)
        forget_image(d1, fingerprint)
        d2.lxc("image", "import", str(image), timeout=600)
        try:
            figures = run(args, lab, tmp, image, fingerprint)
        finally:
            forget_image(d1, fingerprint)
            forget_image(d2, fingerprint)
    report(args, size, *figures)
    return 0


def run(args, lab, tmp: Path, image: Path, fingerprint: str):
    """Time the pairs; (times, peak RSS growth, whether the last import left the image)."""
    d1, d2 = lab.d1, lab.d2
    # `lxc` with a remote for d2, in a configuration of its own (never the user's)
    lxc_env = {**os.environ, "LXD_DIR": d1.lxd_dir, "LXD_CONF": str(tmp / "lxc-conf")}

    def lxc(*words: str) -> None:
        subprocess.run(["lxc", *words], env=lxc_env, check=True, capture_output=True, timeout=600)

    lxc("remote", "add", "benchsrc", d2.trust_token("bench-lxc"), "--accept-certificate")

    server = LiveDashboard(tmp / "dashboard")
    server.tmp.mkdir(mode=0o700)
    server.start()
    try:
        server.manage("addhost", TARGET, d1.socket)
        server.manage("addhost", SOURCE, d2.url, "--token", d2.trust_token("bench-dashboard"))
        session = DashboardSession(server.url, server.username, server.password)
        pid = server.proc.pid

        def dashboard_copy():
            response = session.post(
                f"{server.url}/hosts/{SOURCE}/images/{fingerprint}/copy/",
                data={"target": TARGET},
                headers={"HX-Request": "true"},
                timeout=600,
            )
            assert response.status_code == 200 and "Copied to" in response.text, response.text[:500]

        def lxc_copy():
            lxc("image", "copy", f"benchsrc:{fingerprint}", "local:")

        def dashboard_import():
            reply = ws_import(server.url, session, TARGET, [image])
            assert reply["type"] == "done", reply

        def lxc_import():
            lxc("image", "import", str(image))

        def measured(step, label: str, peak_of: str | None = None) -> None:
            forget_image(d1, fingerprint)  # each transfer starts with the target lacking the image
            if peak_of is None:
                times[label].append(timed(step))
                return
            with PeakRSS(pid) as peak:
                times[label].append(timed(step))
            rss[peak_of] = max(rss[peak_of], peak.growth_mib)

        times: dict[str, list[float]] = {k: [] for k in ("copy", "lxc copy", "import", "lxc import")}
        rss = {"copy": 0.0, "import": 0.0}
        # warm up both paths once (imports, connection pools, the first page renders)
        measured(dashboard_copy, "copy")
        measured(lxc_copy, "lxc copy")
        times = {k: [] for k in times}
        for run in range(args.runs):
            # each pair in both orders, alternately: the second of a pair may find caches warm
            pairs = [
                [lambda: measured(lxc_copy, "lxc copy"), lambda: measured(dashboard_copy, "copy", "copy")],
                [
                    lambda: measured(lxc_import, "lxc import"),
                    lambda: measured(dashboard_import, "import", "import"),
                ],
            ]
            for pair in pairs:
                for step in pair if run % 2 == 0 else reversed(pair):
                    step()
        imported_ok = d1.admin().has_image(fingerprint)
    finally:
        server.stop()
    return times, rss, imported_ok


def report(args, size: int, times: dict[str, list[float]], rss: dict[str, float], imported_ok: bool) -> None:
    def rate(seconds: float) -> float:
        return size / MiB / seconds

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print(
        f"# image of {size / MiB:.0f} MiB, {args.runs} runs; copy d2 (HTTPS) -> d1, import into d1 (unix socket); "
        f"imported image present: {imported_ok}"
    )
    for label, dash, direct, target in (
        ("image copy host->host", "copy", "lxc copy", COPY_RATIO),
        ("image import", "import", "lxc import", IMPORT_RATIO),
    ):
        ratios = [d / t for d, t in zip(times[direct], times[dash], strict=True)]
        ratio = statistics.median(ratios)
        print(
            f"{label} throughput ratio {ratio:.2f} (median of {', '.join(f'{r:.2f}' for r in ratios)}; "
            f"dashboard {rate(statistics.median(times[dash])):.0f} MiB/s, "
            f"{'lxc image ' + direct.split()[1]} {rate(statistics.median(times[direct])):.0f} MiB/s; "
            f"target >= {target}) {verdict(ratio >= target)}"
        )
    print(
        f"peak RSS growth image import {rss['import']:.1f} MiB (target <= {TARGET_RSS_MIB} MiB) "
        f"{verdict(rss['import'] <= TARGET_RSS_MIB)}"
    )
    print(f"peak RSS growth image copy {rss['copy']:.1f} MiB (the bytes go host to host)")


if __name__ == "__main__":
    raise SystemExit(main())
