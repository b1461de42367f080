"""Benchmark of the live path, on the real lab daemons (LAB_ID picks the lab).

    LAB_ID=3 .venv/bin/python bench/events.py [--events 300] [--clients 100]

1. Added latency: the same LXD event seen by a direct /1.0/events client and by a
   dashboard websocket client (its first fragment for that event), both in this process,
   over a few hundred events (instance starts/stops on d1).  Measured with 1 dashboard
   client, then again as one of N connected clients.  Targets: p50 <= 5 ms, p99 <= 25 ms.
2. Upstream events connections per host with N dashboard clients connected, counted on the
   daemon side: LXD's own "Event listener server handler started/stopped" log records (its
   logging stream), attributed to the dashboard process by remote address (`ss`).  Target 1.

The dashboard runs as in production's embedded default: daphne in its own process with the
relay inside, its own SQLite file, d1 over the unix socket and d2 over HTTPS.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from websockets.asyncio.client import connect, unix_connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hosts.lxd import LXDClient  # noqa: E402
from tests.support import ListenerLog, tcp_local_ports  # noqa: E402

# The first push for a lifecycle event: the fleet's status cell alone (the second push, the
# whole row, comes after an LXD call and is not what we time; its cells carry no hx-swap-oob).
STATUS_CELL = re.compile(
    r'<td id="instance-b1-(bench-ev\d+)-status" data-value="\w+" hx-swap-oob="true">'
    r'<span class="badge status-\w+">(\w+)<'
)
OPERATION_ITEM = re.compile(r'afterbegin:#live-operations"><li id="operation-b1-([0-9a-f-]+)"')
PASSWORD = "bench-password-123"


def lab_env() -> dict[str, str]:
    out = subprocess.run([str(ROOT / "bin" / "lab"), "up", "2"], capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Dashboard:
    def __init__(self, lab: dict[str, str]):
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-events-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DASHBOARD_DATA_DIR": str(self.tmp),
            "DASHBOARD_DB": str(self.tmp / "bench.sqlite3"),
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.lab = lab
        self.proc: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def setup(self, token: str) -> None:
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage(
            "shell",
            "-c",
            f"from django.contrib.auth.models import User; User.objects.create_superuser('bench', '', '{PASSWORD}')",
        )
        self.manage("addhost", "b1", self.lab["LAB_D1_SOCKET"])
        self.manage("addhost", "b2", self.lab["LAB_D2_URL"], "--token", token)

    def start(self) -> None:
        self.log = open(self.tmp / "daphne.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "dashboard.asgi:application",
            ],
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("daphne did not start")

    def session_cookie(self) -> str:
        s = requests.Session()
        s.trust_env = False
        s.get(self.url + "/accounts/login/", timeout=10)
        s.post(
            self.url + "/accounts/login/",
            data={"username": "bench", "password": PASSWORD, "csrfmiddlewaretoken": s.cookies["csrftoken"]},
            timeout=10,
        )
        return f"sessionid={s.cookies['sessionid']}; csrftoken={s.cookies['csrftoken']}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.log.close()
        if os.environ.get("BENCH_KEEP"):  # to read daphne.log
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


async def dashboard_socket(dash: Dashboard, cookie: str):
    return await open_socket(dash.port, cookie)


async def open_socket(port: int, cookie: str):
    return await connect(
        f"ws://127.0.0.1:{port}/ws/live/?topics=instances,operations&host=b1",
        additional_headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"},
        proxy=None,
        max_size=None,
        # The server pings (daphne, every 20 s) as for browsers; pings of our own, answered late
        # on a busy machine, would only close the crowd's sockets.
        ping_interval=None,
    )


async def crowd(count: int, port: int, cookie: str) -> None:
    """--crowd: hold `count` dashboard sockets open, reading everything, until killed."""
    sockets = [await open_socket(port, cookie) for _ in range(count)]
    print("ready", flush=True)
    await asyncio.gather(*(drain(ws) for ws in sockets))


async def measure(d1: LXDClient, lab: dict, dash_ws, names: list[str], events: int) -> dict[str, list[float]]:
    """Cycle the instances through start/stop; pair each event's arrival on both clients."""
    direct: dict[tuple, float] = {}
    via_dashboard: dict[tuple, float] = {}
    counts_direct: dict[tuple, int] = {}
    counts_dash: dict[tuple, int] = {}
    stop_reading = asyncio.Event()

    async def read_direct():
        async with unix_connect(lab["LAB_D1_SOCKET"], "ws://lxd/1.0/events?type=operation,lifecycle") as ws:
            ready.set()
            async for raw in ws:
                now = time.perf_counter()
                event = json.loads(raw)
                meta = event["metadata"]
                if event["type"] == "lifecycle" and meta.get("action") in (
                    "instance-started",
                    "instance-stopped",
                ):
                    name = meta["source"].rsplit("/", 1)[1]
                    status = "Running" if meta["action"] == "instance-started" else "Stopped"
                    key = ("status", name, status)
                    n = counts_direct[key] = counts_direct.get(key, 0) + 1
                    direct[(*key, n)] = now
                elif event["type"] == "operation" and meta.get("status_code") in (105, 103):
                    direct.setdefault(("op", meta["id"]), now)

    async def read_dashboard():
        async for frame in dash_ws:
            now = time.perf_counter()
            for name, status in STATUS_CELL.findall(frame):
                key = ("status", name, status)
                n = counts_dash[key] = counts_dash.get(key, 0) + 1
                via_dashboard[(*key, n)] = now
            for op_id in OPERATION_ITEM.findall(frame):
                via_dashboard.setdefault(("op", op_id), now)
            if stop_reading.is_set():
                return

    ready = asyncio.Event()
    readers = [asyncio.create_task(read_direct()), asyncio.create_task(read_dashboard())]
    await ready.wait()

    async def cycle(name: str, rounds: int):
        for _ in range(rounds):
            await asyncio.to_thread(
                d1.run, "PUT", f"/1.0/instances/{name}/state", json_body={"action": "start"}
            )
            await asyncio.to_thread(
                d1.run, "PUT", f"/1.0/instances/{name}/state", json_body={"action": "stop", "force": True}
            )

    rounds = max(1, events // (2 * len(names)))
    await asyncio.gather(*(cycle(n, rounds) for n in names))
    await asyncio.sleep(1.0)
    stop_reading.set()
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    result: dict[str, list[float]] = {"status": [], "op": [], "missing": []}
    for key, t0 in direct.items():
        t1 = via_dashboard.get(key)
        if t1 is None:
            result["missing"].append(0.0)
        else:
            result[key[0]].append((t1 - t0) * 1000)
    return result


async def drain(ws) -> None:
    async for _ in ws:
        pass


def report(label: str, result: dict[str, list[float]]) -> None:
    for kind, what in (
        ("status", "instance status (lifecycle event -> status cell)"),
        ("op", "operation (first event -> panel item)"),
    ):
        values = result[kind]
        if values:
            print(
                f"events: added latency, {what}, {label}: n={len(values)} "
                f"p50={statistics.median(values):.2f} ms p99={percentile(values, 99):.2f} ms "
                f"(targets p50 <= 5 ms, p99 <= 25 ms)"
            )
    if result["missing"]:
        print(
            f"events: {len(result['missing'])} events had not reached the dashboard client 1 s after "
            f"the last one ({label}; late, or lost)"
        )


async def main(args) -> None:
    lab = lab_env()
    d1 = LXDClient(lab["LAB_D1_SOCKET"], timeout=(5, 60))
    d2 = LXDClient(lab["LAB_D2_SOCKET"], timeout=(5, 60))
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
    certs_before = {c["fingerprint"] for c in d2.certificates()}
    dash = Dashboard(lab)
    logs = [ListenerLog(lab["LAB_D1_SOCKET"]), ListenerLog(lab["LAB_D2_SOCKET"])]
    clients = []
    log_stack = contextlib.AsyncExitStack()
    try:
        for log in logs:
            await log_stack.enter_async_context(log)
        await asyncio.sleep(0.3)
        unix_baseline = len(logs[0].open_from(lambda r: True))  # our own logging listener(s) on d1
        token_op = d2.create_trust_token("bench")
        meta = token_op.metadata
        token = base64.b64encode(
            json.dumps(
                {
                    "client_name": "bench",
                    "fingerprint": meta["fingerprint"],
                    "addresses": meta["addresses"],
                    "secret": meta["secret"],
                    "expires_at": "0001-01-01T00:00:00Z",
                }
            ).encode()
        ).decode()
        await asyncio.to_thread(dash.setup, token)
        await asyncio.to_thread(dash.start)
        cookie = await asyncio.to_thread(dash.session_cookie)
        measured = await dashboard_socket(dash, cookie)  # starts the embedded relay
        await asyncio.sleep(3)  # connected and resynchronised

        report("1 dashboard client", await measure(d1, lab, measured, names, args.events))

        # The other clients live in a process of their own and read everything, as browsers
        # do: 99 clients parsing every frame in this process would delay our own clock.
        crowd = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--crowd",
                str(args.clients - 1),
                "--port",
                str(dash.port),
                "--cookie",
                cookie,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        clients.append(crowd)
        ready = await asyncio.to_thread(crowd.stdout.readline)
        assert ready.strip() == "ready", ready
        await asyncio.sleep(2)
        before, started = (cpu_seconds(dash.proc.pid), cpu_seconds(crowd.pid)), time.monotonic()
        report(f"{args.clients} dashboard clients", await measure(d1, lab, measured, names, args.events))
        elapsed = time.monotonic() - started
        print(
            f"events: CPU while {args.clients} clients watched: dashboard process "
            f"{(cpu_seconds(dash.proc.pid) - before[0]) / elapsed:.2f} CPU, the {args.clients - 1} other clients "
            f"{(cpu_seconds(crowd.pid) - before[1]) / elapsed:.2f} CPU, on {os.cpu_count()} CPUs "
            f"(load average {os.getloadavg()[0]:.1f})"
        )

        await asyncio.sleep(1)
        d2_port = int(lab["LAB_D2_URL"].rsplit(":", 1)[1])
        ours = tcp_local_ports(dash.proc.pid, d2_port)
        d2_listeners = [
            r
            for r in logs[1].open_from(lambda r: True)
            if r.startswith("127.0.0.1:") and int(r.rsplit(":", 1)[1]) in ours
        ]
        # d1 is reached over its unix socket: remotes are anonymous ("@"), so count the
        # listeners that opened after our own (the direct client of measure() has closed).
        d1_listeners = len(logs[0].open_from(lambda r: True)) - unix_baseline
        print(
            f"events: upstream events connections per host with {args.clients} dashboard clients "
            f"(daemon side, LXD's listener log): b1 (unix) {d1_listeners}, b2 (https) {len(d2_listeners)} (target 1)"
        )
        print(
            f"events: established TCP connections dashboard process -> b2:{d2_port} (ss): {len(ours)} "
            "(the events stream plus any pooled HTTP keep-alive connection)"
        )
    finally:
        for crowd in clients:
            crowd.terminate()
            crowd.wait(10)
        await log_stack.aclose()
        await asyncio.to_thread(dash.stop)
        for name in names:
            try:
                d1.run("DELETE", f"/1.0/instances/{name}")
            except Exception as exc:  # report, do not hide
                print(f"cleanup: {name}: {exc}")
        for cert in d2.certificates():
            if cert["fingerprint"] not in certs_before:
                d2.delete_certificate(cert["fingerprint"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=300, help="lifecycle events per measurement")
    parser.add_argument("--clients", type=int, default=100, help="dashboard websocket clients")
    parser.add_argument("--instances", type=int, default=4, help="instances cycled in parallel")
    parser.add_argument("--crowd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cookie", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.crowd:
        asyncio.run(crowd(arguments.crowd, arguments.port, arguments.cookie))
    else:
        asyncio.run(main(arguments))
