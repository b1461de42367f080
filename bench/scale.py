"""Benchmark of the scale-out mode, on the real lab daemons (LAB_ID picks the lab).

    LAB_ID=3 .venv/bin/python bench/scale.py [--sockets 1000] [--events 200]

The deployment is tests/scale.py's: the lab's PostgreSQL and Redis, two daphne processes and
two `manage.py relay` processes (one active, one standing by), b1 = d1 over its unix socket,
b2 = d2 over HTTPS.

1. Added latency with --sockets browser sockets spread over the two web processes: the same
   LXD event seen by a direct /1.0/events client and by one dashboard socket (bench/events.py's
   measure()), once through each web process.  Targets: p50 <= 25 ms, p99 <= 100 ms.
2. Memory per socket: the web processes' RSS with the sockets open, less before, per socket.
   Target <= 50 KiB.
3. Upstream events connections per LXD host, counted on the daemon side (LXD's listener log,
   as bench/events.py does).  Target exactly 1.
4. Relay failover: SIGKILL of the active relay, then start/stop an instance in a loop: the time
   until the first status cell reaches a page (the standby took over and relays), and every
   operation of the gap in the task log exactly once.  Target <= 5 s, 0 lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import events  # noqa: E402  (bench/events.py: measure, open_socket, STATUS_CELL)

from hosts.lxd import LXDClient  # noqa: E402
from tests.lab import start_lab  # noqa: E402
from tests.scale import ScaleDeployment, login_cookie  # noqa: E402
from tests.support import ListenerLog, tcp_local_ports  # noqa: E402

HOSTS = ("b1", "b2")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def report(label: str, result: dict[str, list[float]]) -> None:
    values = result["status"]
    if values:
        print(
            f"scale: added latency, instance status, {label}: n={len(values)} "
            f"p50={statistics.median(values):.2f} ms p99={events.percentile(values, 99):.2f} ms "
            "(targets p50 <= 25 ms, p99 <= 100 ms)"
        )
    if result["missing"]:
        print(
            f"scale: {len(result['missing'])} events had not reached the dashboard socket 1 s after the last one ({label})"
        )


def start_crowd(count: int, port: int, cookie: str) -> subprocess.Popen:
    crowd = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "events.py"),
            "--crowd",
            str(count),
            "--port",
            str(port),
            "--cookie",
            cookie,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = crowd.stdout.readline()
    assert ready.strip() == "ready", ready
    return crowd


async def quiet(ws, seconds: float = 1.0) -> None:
    """Read until nothing comes for `seconds`: what a socket missed reading is not news."""
    with contextlib.suppress(TimeoutError):
        while True:
            await asyncio.wait_for(ws.recv(), seconds)


async def measure_on(d1: LXDClient, lab, sockets: list, index: int, names: list[str], count: int) -> dict:
    """bench/events.py's measure() on sockets[index], the others read meanwhile (as browsers)."""
    others = [asyncio.create_task(events.drain(ws)) for i, ws in enumerate(sockets) if i != index]
    try:
        await quiet(sockets[index])
        return await events.measure(d1, lab.env, sockets[index], names, count)
    finally:
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


async def failover(scale: ScaleDeployment, d1: LXDClient, name: str, ws) -> None:
    active = await asyncio.to_thread(scale.wait_until_relaying, 30, HOSTS)
    await quiet(ws)
    killed = time.monotonic()
    active.kill()
    made: list[str] = []
    delivered = asyncio.Event()
    first: list[float] = []

    async def watch():
        async for frame in ws:
            if events.STATUS_CELL.search(frame):
                first.append(time.monotonic())
                delivered.set()
                return

    async def churn():
        for action in ["start", "stop"] * 100:
            if delivered.is_set():
                return
            body = {"action": action, "force": True}
            op = await asyncio.to_thread(d1.start, "PUT", f"/1.0/instances/{name}/state", body)
            made.append(op.id)
            await asyncio.to_thread(d1.wait, op)

    watcher = asyncio.create_task(watch())
    await asyncio.wait_for(asyncio.gather(watcher, churn()), 60)
    took = first[0] - killed

    def recorded() -> dict[str, int]:
        with psycopg.connect(scale.database_url) as conn:
            rows = conn.execute(
                "SELECT operation_id, count(*) FROM hosts_task WHERE host_name = 'b1' "
                "AND operation_id = ANY(%s) GROUP BY operation_id",
                [made],
            ).fetchall()
        return dict(rows)

    # The new relay writes the task log in batches: until every operation is there, or 15 s
    # (what is still missing then is lost).
    deadline = time.monotonic() + 15
    while len(counts := await asyncio.to_thread(recorded)) < len(made) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    lost = [op for op in made if op not in counts]
    duplicated = [op for op, n in counts.items() if n != 1]
    print(
        f"scale: relay failover: SIGKILL of the active relay -> first status cell from the standby "
        f"{took:.2f} s (target <= 5 s); operations meanwhile {len(made)}, in the task log "
        f"{len(counts)}, lost {len(lost)}, duplicated {len(duplicated)} (target 0 lost)"
    )


async def main(args) -> None:
    lab = start_lab(2)
    d1 = LXDClient(lab.d1.socket, timeout=(5, 60))
    names = [f"bench-ev{i}" for i in range(args.instances)]
    existing = {i["name"]: i["status"] for i in d1.get("/1.0/instances", params={"recursion": 1})}
    for name in names:
        if existing.get(name) == "Running":
            d1.run("PUT", f"/1.0/instances/{name}/state", json_body={"action": "stop", "force": True})
        if name in existing:
            d1.run("DELETE", f"/1.0/instances/{name}")
        d1.run(
            "POST",
            "/1.0/instances",
            json_body={"name": name, "source": {"type": "image", "alias": "busybox"}},
        )
    d2_certs = {c["fingerprint"] for c in lab.d2.admin().certificates()}
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    tmp.chmod(0o700)
    scale = ScaleDeployment(tmp, lab).create()
    crowds: list[subprocess.Popen] = []
    logs = [ListenerLog(lab.d1.socket), ListenerLog(lab.d2.socket)]
    try:
        for log in logs:
            await log.__aenter__()
        await asyncio.sleep(0.3)
        d1_baseline = len(logs[0].open_from(lambda r: True))  # our own logging listeners
        scale.manage("addhost", "b1", lab.d1.socket)
        scale.manage("addhost", "b2", lab.d2.url, "--token", lab.d2.trust_token())
        webs = [scale.web(), scale.web()]
        scale.relay()
        scale.relay()
        await asyncio.to_thread(scale.wait_until_relaying, 30, HOSTS)
        cookie = await asyncio.to_thread(login_cookie, webs[0].url, scale.username, scale.password)
        measured = [await events.open_socket(web.port, cookie) for web in webs]
        await asyncio.sleep(2)
        report(
            "2 sockets (1 per web process)",
            await measure_on(d1, lab, measured, 0, names, args.events),
        )

        rss_before = [rss_kib(web.pid) for web in webs]
        per_web = (args.sockets - len(webs)) // len(webs)
        # Read the measured sockets meanwhile: one that is not read stops answering the
        # server's pings, which closes it.
        reading = [asyncio.create_task(events.drain(ws)) for ws in measured]
        for web in webs:
            crowds.append(await asyncio.to_thread(start_crowd, per_web, web.port, cookie))
        await asyncio.sleep(2)
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)
        total = len(webs) * (per_web + 1)
        grown = sum(rss_kib(web.pid) for web in webs) - sum(rss_before)
        print(
            f"scale: memory per socket: {grown / (total - len(webs)):.1f} KiB "
            f"(web processes' RSS {sum(rss_before) / 1024:.0f} -> {(sum(rss_before) + grown) / 1024:.0f} MiB "
            f"for {total - len(webs)} more sockets; target <= 50 KiB)"
        )
        for i in range(len(measured)):
            label = f"{total} sockets over 2 web processes, measured on web{i + 1}"
            report(label, await measure_on(d1, lab, measured, i, names, args.events))

        relays = [r for r in scale.relays if r.alive()]
        d2_port = int(lab.d2.url.rsplit(":", 1)[1])
        ours = set().union(*(tcp_local_ports(p.pid, d2_port) for p in [*relays, *webs]))
        d2_listeners = [
            r
            for r in logs[1].open_from(lambda r: True)
            if r.startswith("127.0.0.1:") and int(r.rsplit(":", 1)[1]) in ours
        ]
        d1_listeners = len(logs[0].open_from(lambda r: True)) - d1_baseline
        print(
            f"scale: upstream events connections per host with {total} sockets, 2 web processes and "
            f"2 relays (daemon side, LXD's listener log): b1 (unix) {d1_listeners}, b2 (https) "
            f"{len(d2_listeners)} (target 1)"
        )
        for crowd in crowds:
            crowd.terminate()
            crowd.wait(10)
        crowds.clear()
        await failover(scale, d1, names[0], measured[1])
        for ws in measured:
            await ws.close()
    finally:
        for crowd in crowds:
            crowd.terminate()
            crowd.wait(10)
        for log in logs:
            await log.__aexit__(None, None, None)
        scale.stop()
        if os.environ.get("BENCH_KEEP"):  # to read the processes' logs
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        for name in names:
            with contextlib.suppress(Exception):  # stopped already
                d1.run("PUT", f"/1.0/instances/{name}/state", json_body={"action": "stop", "force": True})
            try:
                d1.run("DELETE", f"/1.0/instances/{name}")
            except Exception as exc:  # report, do not hide
                print(f"cleanup: {name}: {exc}")
        d2 = lab.d2.admin()
        for cert in d2.certificates():
            if cert["fingerprint"] not in d2_certs:
                d2.delete_certificate(cert["fingerprint"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sockets", type=int, default=1000, help="browser sockets over the two web processes"
    )
    parser.add_argument("--events", type=int, default=200, help="lifecycle events per measurement")
    parser.add_argument("--instances", type=int, default=4, help="instances cycled in parallel")
    asyncio.run(main(parser.parse_args()))
