"""Benchmark: copying an instance between two lab daemons through the dashboard, against `lxc copy`
between the same daemons; a backup's export downloaded through the dashboard, against the same
download straight from LXD.

    LAB_ID=<id> .venv/bin/python bench/move.py [--mib 256] [--runs 3]

Starts the lab (bin/lab), a stopped container on d1 holding --mib MiB of random data, and the
dashboard under a real daphne in a subprocess (its own SQLite file; lab1 = d1 over its unix
socket, lab2 = d2 over HTTPS), logs in over HTTP, then times, in one run:
  - `lxc copy` from d1 to d2 (pull mode, lxc's default; its own client config, unix remotes);
  - the same copy through the dashboard's Copy form: from the POST to the end of its task log
    row (the dashboard opens both LXD operations, follows them, and verifies the copy);
  - a backup's export (no compression) read straight from LXD: from d1 over its unix socket,
    and from d2 over HTTPS (a client certificate of the bench's own, trusted for the run);
  - the same exports downloaded through the dashboard (streamed GET, as a browser does).
Each dashboard transfer is paired with the direct one made just before it; the throughput ratio
is the median over the pairs.  Memory is daphne's peak RSS (VmHWM, reset before each transfer
and sampled every 10 ms) above its RSS just before it: the bytes of a copy go host to host,
never through the dashboard.  One summary line per figure.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.files import PeakRSS  # noqa: E402
from hosts.lxd import LXDClient  # noqa: E402
from hosts.lxd.certs import fetch_server_certificate, generate_client_certificate  # noqa: E402
from hosts.lxd.endpoint import TLSIdentity  # noqa: E402
from tests.lab import start_lab  # noqa: E402
from tests.support import DashboardSession, LiveDashboard  # noqa: E402

MiB = 1024 * 1024
COPY_RATIO, EXPORT_RATIO, RSS_MIB = 0.9, 0.7, 10


def lxc(conf: Path, *args: str, timeout: float = 600) -> None:
    subprocess.run(
        ["lxc", *args],
        env={**os.environ, "LXD_CONF": str(conf)},
        check=True,
        capture_output=True,
        timeout=timeout,
    )


def task_done(db: Path, instance: str) -> tuple[str, str, str, str] | None:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT status, error, targets, ended_at FROM hosts_task WHERE op_class = 'transfer' "
            "AND targets LIKE ? AND status IN ('success', 'failure')",
            (f"% instance:{instance} %",),
        ).fetchone()


def operations_end(db: Path, targets: str) -> str:
    """When the relay saw the last of the transfer's two LXD operations end."""
    ids = [token.split("/", 1)[1] for token in targets.split() if token.startswith("operation:")]
    with sqlite3.connect(db) as conn:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = conn.execute(
                f"SELECT ended_at FROM hosts_task WHERE operation_id IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
            if len(rows) == len(ids) and all(r[0] for r in rows):
                return max(r[0] for r in rows)
            time.sleep(0.05)
    return ""


def seconds_between(earlier: str, later: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


overheads: dict[str, list[float]] = {"request": [], "after": []}


def dashboard_copy(server: LiveDashboard, session, source: str, copy: str) -> float:
    started = time.monotonic()
    response = session.post(
        f"{server.url}/hosts/lab1/instances/{source}/transfer/",
        data={"action": "copy", "target": "lab2", "target_name": copy, "mode": "pull"},
        allow_redirects=False,
        timeout=60,
    )
    overheads["request"].append(time.monotonic() - started)  # the plan: every refusal checked
    if response.status_code != 302:
        raise RuntimeError(f"the copy was refused: {response.status_code} {response.text[:500]}")
    db = server.tmp / "live.sqlite3"
    while (done := task_done(db, copy)) is None:
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    if done[0] != "success":
        raise RuntimeError(f"the dashboard's copy failed: {done[1]}")
    if ops_end := operations_end(db, done[2]):
        overheads["after"].append(seconds_between(ops_end, done[3]))  # the check of the copy
    return elapsed


def read_all(chunks) -> int:
    return sum(len(chunk) for chunk in chunks)


def https_client(daemon) -> LXDClient:
    """A client of the bench's own over HTTPS, trusted through the daemon's unix socket."""
    cert = generate_client_certificate("bench-move")
    daemon.admin().add_trusted_certificate(cert.certificate_pem, name="bench-move")
    host, port = daemon.url.removeprefix("https://").split(":")
    server_pem = fetch_server_certificate(host, int(port), timeout=5)
    tls = TLSIdentity(server_pem, cert.certificate_pem, cert.private_key_pem)
    return LXDClient(daemon.url, tls=tls, label=daemon.name, timeout=(5, 600))


def export_pairs(runs: int, server, session, pid: int, host: str, instance: str, direct_client):
    """(median ratio, direct MiB/s, dashboard MiB/s, peak RSS growth, bytes) over `runs` pairs."""
    ratios, direct_rates, dash_rates, growths = [], [], [], []
    got = 0
    for run in range(runs):

        def direct_read():
            started = time.monotonic()
            length, response = direct_client.open_backup_export(instance, "bench")
            got = read_all(response.iter_content(chunk_size=MiB))
            response.close()
            if got != length:
                raise RuntimeError(f"direct export: {got} of {length} bytes")
            return time.monotonic() - started, got

        def through_dashboard():
            with PeakRSS(pid) as rss:
                started = time.monotonic()
                download = session.get(
                    f"{server.url}/hosts/{host}/instances/{instance}/backups/bench/download/",
                    stream=True,
                    timeout=600,
                )
                through = read_all(download.iter_content(chunk_size=MiB))
                elapsed = time.monotonic() - started
            if download.status_code != 200:
                raise RuntimeError(f"download: HTTP {download.status_code}")
            growths.append(rss.growth_mib)
            return elapsed, through

        if run % 2 == 0:
            (direct, got), (dashboard, through) = direct_read(), through_dashboard()
        else:
            (dashboard, through), (direct, got) = through_dashboard(), direct_read()
        if through != got:
            raise RuntimeError(f"export mismatch: {through} through the dashboard, {got} direct")
        ratios.append(direct / dashboard)
        direct_rates.append(got / direct / MiB)
        dash_rates.append(got / dashboard / MiB)
    return (
        statistics.median(ratios),
        statistics.median(direct_rates),
        statistics.median(dash_rates),
        max(growths),
        got,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.mib * MiB

    lab = start_lab(3)
    d1, d2 = lab.d1, lab.d2
    name = f"bench-mv-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="bench-move-") as tmp:
        tmp = Path(tmp)
        conf = tmp / "lxc"
        conf.mkdir()
        lxc(conf, "remote", "add", "src", f"unix://{d1.socket}")
        lxc(conf, "remote", "add", "dst", f"unix://{d2.socket}")
        server = LiveDashboard(tmp / "dashboard")
        server.tmp.mkdir(mode=0o700)
        made: list[tuple[object, str]] = [(d1, name)]
        try:
            d1.lxc("launch", "busybox", name, timeout=120)
            d1.lxc(
                "exec",
                name,
                "--",
                "dd",
                "if=/dev/urandom",
                "of=/root/data",
                "bs=1M",
                f"count={args.mib}",
                timeout=600,
            )
            d1.lxc("stop", "--force", name)
            server.start()
            server.manage("addhost", "lab1", d1.socket)
            server.manage("addhost", "lab2", d2.url, "--token", d2.trust_token("bench-move"))
            session = DashboardSession(server.url, server.username, server.password)
            pid = server.proc.pid

            ratios, direct_rates, dash_rates, growths = [], [], [], []
            for run in range(args.runs):
                direct_name, dash_name = f"{name}-l{run}", f"{name}-d{run}"
                made += [(d2, direct_name), (d2, dash_name)]

                def direct_copy(copy=direct_name):
                    started = time.monotonic()
                    lxc(conf, "copy", f"src:{name}", f"dst:{copy}")
                    return time.monotonic() - started

                def through_dashboard(copy=dash_name):
                    with PeakRSS(pid) as rss:
                        elapsed = dashboard_copy(server, session, name, copy)
                    growths.append(rss.growth_mib)
                    return elapsed

                # Alternate which goes first, and start each from the same disk state: the
                # copy deleted and its writes flushed before the next one is timed.
                times = {}
                for kind in ("direct", "dashboard") if run % 2 == 0 else ("dashboard", "direct"):
                    times[kind] = direct_copy() if kind == "direct" else through_dashboard()
                    d2.lxc("delete", "--force", direct_name if kind == "direct" else dash_name)
                    subprocess.run(["sync"], check=True)
                direct, dashboard = times["direct"], times["dashboard"]
                ratios.append(direct / dashboard)
                direct_rates.append(size / direct / MiB)
                dash_rates.append(size / dashboard / MiB)
            ratio, growth = statistics.median(ratios), max(growths)
            print(
                f"copy {args.mib} MiB d1 -> d2: lxc copy {statistics.median(direct_rates):.1f} MiB/s, "
                f"dashboard {statistics.median(dash_rates):.1f} MiB/s: {ratio:.2f} x "
                f"(target >= {COPY_RATIO}: {'ok' if ratio >= COPY_RATIO else 'MISSED'})"
            )
            print(
                f"copy {args.mib} MiB d1 -> d2: per run {', '.join(f'{r:.2f}' for r in ratios)}; the dashboard's "
                f"own time: {statistics.median(overheads['request']):.2f} s to plan (the POST), "
                f"{statistics.median(overheads['after'] or [0]):.2f} s from the operations' end to the task's"
            )
            print(
                f"copy {args.mib} MiB d1 -> d2: daphne RSS +{growth:.1f} MiB "
                f"(target <= {RSS_MIB} MiB: {'ok' if growth <= RSS_MIB else 'MISSED'})"
            )

            # An export from each kind of host: lab1 over its unix socket, lab2 over HTTPS (the
            # direct reader then is a client of lab2's own, trusted for the bench).
            d2_name = f"{name}-h"
            made.append((d2, d2_name))
            d2.lxc("launch", "busybox", d2_name, timeout=120)
            d2.lxc(
                "exec",
                d2_name,
                "--",
                "dd",
                "if=/dev/urandom",
                "of=/root/data",
                "bs=1M",
                f"count={args.mib}",
                timeout=600,
            )
            d2.lxc("stop", "--force", d2_name)
            for host, daemon, instance, direct_client in (
                ("lab1", d1, name, d1.admin()),
                ("lab2", d2, d2_name, https_client(d2)),
            ):
                admin = daemon.admin()
                admin.wait(admin.create_backup(instance, "bench", compression="none"), timeout=600)
                ratio, direct_rate, dash_rate, growth, got = export_pairs(
                    args.runs, server, session, pid, host, instance, direct_client
                )
                via = "unix socket" if host == "lab1" else "HTTPS"
                print(
                    f"backup export {got / MiB:.0f} MiB from {host} ({via}): direct {direct_rate:.1f} MiB/s, "
                    f"through the dashboard {dash_rate:.1f} MiB/s: {ratio:.2f} x "
                    f"(target >= {EXPORT_RATIO}: {'ok' if ratio >= EXPORT_RATIO else 'MISSED'}); "
                    f"daphne RSS +{growth:.1f} MiB"
                )
        finally:
            server.stop()
            for daemon, instance in made:
                daemon.lxc("delete", "--force", instance, check=False)
            for cert in d2.admin().certificates():  # the bench's client and the throw-away dashboard's
                if cert.get("name") == "bench-move":
                    d2.admin().delete_certificate(cert["fingerprint"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
