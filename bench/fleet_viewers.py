#!/usr/bin/env python
"""What viewers cost: the fleet page from the live model under 1, 5 and 20 concurrent viewers,
against the LXD calls the page made before the model (direct, same run).  Not a timed test.

    LAB_ID=1 .venv/bin/python bench/fleet_viewers.py

Sets up 3 lab daemons x BENCH_PER_HOST instances (BENCH_RUNNING running on each; 50 and 20 by
default), the third reached through bench/fleet.py's delaying proxy (+300 ms per request). The
dashboard runs under daphne in its own process (embedded relay, DASHBOARD_COUNTERS_SECONDS from
the environment, 10 by default). Each viewer does full loads back to back for BENCH_SECONDS: the
fleet page, then the per-host state parts the page asks for (none when every model is fresh).

Printed per viewer count, in the same run:
- page: full loads/s, p50, p95 of a full load;
- direct: the same number of clients each doing what a page load asked of LXD before the model
  (every host's recursion=1, then every host's recursion=2, hosts in parallel), loads/s, p50, p95,
  and the ratios page / direct;
- LXD requests per page load, as the daemons themselves log them (tests/support/lxd_requests.py), with
  what they were (the relay's state listings at the counters' cadence are the only expected ones);
- the daemons' CPU seconds during the page loads / the same daemons idle for as long (relay on).
Everything the bench creates is removed.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fleet import (  # noqa: E402 (bench/fleet.py: the lab setup this bench shares)
    DELAY,
    PREFIX,
    DelayProxy,
    make_instances,
    remove_instances,
    trust_bench_certificate,
    wait_live,
)

from hosts.lxd import LXDClient, TLSIdentity  # noqa: E402
from hosts.lxd.certs import generate_client_certificate  # noqa: E402
from tests.lab import start_lab  # noqa: E402
from tests.support import LiveDashboard, RequestLog  # noqa: E402

PER_HOST = int(os.environ.get("BENCH_PER_HOST", "50"))
RUNNING = int(os.environ.get("BENCH_RUNNING", "20"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
VIEWERS = (1, 5, 20)
CADENCE = os.environ.get("DASHBOARD_COUNTERS_SECONDS", "10")
TICKS = os.sysconf("SC_CLK_TCK")


class Viewer:
    """A logged-in browser: the page, then its lazy state parts in parallel."""

    def __init__(self, server: LiveDashboard):
        self.base = server.url
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.get(self.base + "/accounts/login/")
        response = self.session.post(
            self.base + "/accounts/login/",
            data={
                "username": server.username,
                "password": server.password,
                "csrfmiddlewaretoken": self.session.cookies["csrftoken"],
            },
            headers={"Referer": self.base + "/accounts/login/"},
        )
        assert "/accounts/login/" not in response.url, "login failed"

    def load(self) -> tuple[str, int]:
        response = self.session.get(self.base + "/", timeout=120)
        response.raise_for_status()
        html = response.text
        for url in re.findall(r'hx-get="(/fleet/state/[^"]+)"', html):
            self.session.get(self.base + url.replace("&amp;", "&"), timeout=120).raise_for_status()
        return html, len(re.findall(r'<tr id="instance-[^"]*-' + PREFIX, html))


def direct_load(clients: dict[str, LXDClient], pool: ThreadPoolExecutor) -> None:
    """What one page load asked of LXD before the model: every host's recursion=1, then every
    host's recursion=2 (the page's lazy state parts), the hosts in parallel."""
    for recursion in (1, 2):
        list(pool.map(lambda c, r=recursion: c.instances(r), clients.values()))


def run_for(seconds: float, workers: int, one) -> list[float]:
    """`workers` threads each calling `one(i)` back to back for `seconds`: every call's time."""
    times: list[float] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def work(i: int) -> None:
        while time.monotonic() < end:
            started = time.perf_counter()
            one(i)
            took = time.perf_counter() - started
            with lock:
                times.append(took)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def pct(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def main() -> int:
    lab = start_lab(3)
    d1, d2, d3 = lab.daemons
    admins = {d.name: d.admin() for d in lab.daemons}
    for admin in admins.values():
        admin.timeout = (5, 300)
        remove_instances(admin)
    data_dir = Path(tempfile.mkdtemp(prefix="fleet-viewers-"))
    server = LiveDashboard(data_dir)
    server.env["DASHBOARD_COUNTERS_SECONDS"] = CADENCE
    proxy = DelayProxy(int(d3.url.rsplit(":", 1)[1]), DELAY).start()
    cert = generate_client_certificate("fleet-bench")
    pem_body = "".join(cert.certificate_pem.strip().splitlines()[1:-1])
    pids = [int(a.server()[0]["environment"]["server_pid"]) for a in admins.values()]
    lines: list[str] = []
    try:
        print(f"creating {PER_HOST} instances ({RUNNING} running) on each of 3 hosts ...", flush=True)
        for admin in admins.values():
            make_instances(admin, [f"{PREFIX}{i:03d}" for i in range(PER_HOST)], RUNNING)
        server.start()
        slow_url = f"https://127.0.0.1:{proxy.port}"
        server.manage("addhost", "b1", d1.socket)
        server.manage("addhost", "b2", d2.url, "--token", d2.trust_token("fleet-bench-dashboard"))
        server.manage("addhost", "b3-slow", slow_url, "--token", d3.trust_token("fleet-bench-dashboard"))
        for daemon in (d2, d3):
            trust_bench_certificate(daemon, pem_body)

        def pinned(url: str, daemon) -> LXDClient:
            server_pem = daemon.admin().server()[0]["environment"]["certificate"]
            return LXDClient(url, tls=TLSIdentity(server_pem, cert.certificate_pem, cert.private_key_pem))

        direct = {"b1": LXDClient(d1.socket), "b2": pinned(d2.url, d2), "b3-slow": pinned(slow_url, d3)}
        for client in direct.values():
            client.timeout = (5, 300)

        viewers = [Viewer(server) for _ in range(max(VIEWERS))]
        wait_live(viewers[0], 3, 3 * PER_HOST)  # the relay starts with daphne and lists every host
        logs = [RequestLog(d) for d in lab.daemons]
        for log in logs:
            log.__enter__()
        try:
            # Idle: the relay, and the request logs (which cost the daemons too), nobody looking.
            print(f"every host's model is live ({3 * PER_HOST} rows); idle for {SECONDS:g} s ...", flush=True)
            before = cpu_seconds(pids)
            time.sleep(SECONDS)
            idle_cpu = cpu_seconds(pids) - before
            for count in VIEWERS:
                for log in logs:
                    log.settled()
                marks = [log.mark() for log in logs]
                before = cpu_seconds(pids)
                page = run_for(SECONDS, count, lambda i: viewers[i].load())
                page_cpu = cpu_seconds(pids) - before
                for log in logs:
                    log.settled()
                asked = [r for log, mark in zip(logs, marks, strict=True) for r in log.since(mark)]
                kinds = collections.Counter(f"{r.method} {r.url}" for r in asked)
                pool = ThreadPoolExecutor(3 * count)
                straight = run_for(SECONDS, count, lambda i, p=pool: direct_load(direct, p))
                pool.shutdown()
                page_rate, direct_rate = len(page) / SECONDS, len(straight) / SECONDS
                lines.append(
                    f"{count:2d} viewer(s): page {page_rate:6.1f} loads/s, p50 {statistics.median(page) * 1000:6.0f} ms,"
                    f" p95 {pct(page, 0.95) * 1000:6.0f} ms | direct {direct_rate:5.1f} loads/s,"
                    f" p50 {statistics.median(straight) * 1000:6.0f} ms, p95 {pct(straight, 0.95) * 1000:6.0f} ms"
                    f" | page/direct: loads/s x{page_rate / direct_rate:.1f},"
                    f" p50 {statistics.median(page) / statistics.median(straight):.3f},"
                    f" p95 {pct(page, 0.95) / pct(straight, 0.95):.3f}"
                )
                lines.append(
                    f"    LXD requests per page load: {len(asked) / max(1, len(page)):.3f}"
                    f" ({len(asked)} in {len(page)} loads: "
                    + (", ".join(f"{n} x {k}" for k, n in kinds.most_common(4)) or "none")
                    + ")"
                )
                lines.append(
                    f"    LXD daemons' CPU: {page_cpu:.2f} s during the loads / {idle_cpu:.2f} s idle"
                    f" = {page_cpu / idle_cpu if idle_cpu else float('inf'):.2f}"
                )
                print(lines[-3], lines[-2], lines[-1], sep="\n", flush=True)
        finally:
            for log in logs:
                log.__exit__(None, None, None)
    finally:
        print("cleaning up ...", flush=True)
        for admin in admins.values():
            remove_instances(admin)
        for daemon in (d2, d3):
            admin = daemon.admin()
            for entry in admin.certificates():
                if entry["name"] in ("fleet-bench", "fleet-bench-dashboard"):
                    admin.delete_certificate(entry["fingerprint"])
        server.stop()
        proxy.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    print()
    print(
        f"3 hosts x {PER_HOST} instances ({RUNNING} running each; one host +{DELAY * 1000:.0f} ms),"
        f" {SECONDS:g} s per figure, counters cadence {CADENCE} s"
    )
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
