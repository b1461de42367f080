"""Benchmark: the terminal through the dashboard, and the same exec straight to LXD.

    LAB_ID=<id> .venv/bin/python bench/terminal.py [--samples 500] [--mib 100] [--runs 3]

Starts the lab (bin/lab), a throw-away busybox container on d1 (and one on d2), and the dashboard
under a real daphne in a subprocess (its own SQLite file), logs in, then in one run:
1. Keystroke -> echo round trip: `cat` in a terminal (the PTY echoes each key); one key is
   sent and its echo awaited, over a direct LXD exec websocket client and through the
   dashboard's terminal socket (which the client acknowledges as the page does), alternating,
   on the same instance.  For d1 over the unix socket and d2 over HTTPS.  Targets: p50 ratio
   <= 1.5, added p99 <= 10 ms.
   The client acknowledges output as the page does (every 64 KiB, or 100 ms after it came).
2. Throughput of `head -c N /dev/zero | base64` (busybox's head wants bytes, not "100M")
   read to its end: direct, then through the dashboard, `--runs` pairs; the ratio is the median
   of the pairs' ratios.  Target >= 0.7.
3. A stalled reader: `yes` through the dashboard to a client that reads nothing, for --stall
   seconds; daphne's peak RSS (VmHWM, reset before, sampled every 10 ms) above its RSS just
   before.  Target <= 20 MiB.  Then the client goes away and LXD's exec operations left
   running on the instance are counted (target 0).

Every client runs in this process and shares the machine's CPUs with daphne and LXD.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.files import PeakRSS  # noqa: E402
from hosts.domain.terminal_window import OUTPUT_WINDOW  # noqa: E402
from hosts.lxd import LXDClient  # noqa: E402
from hosts.lxd.certs import fetch_server_certificate, generate_client_certificate  # noqa: E402
from hosts.lxd.endpoint import TLSIdentity, parse_endpoint  # noqa: E402
from hosts.lxd.exec import ExecCommand  # noqa: E402
from hosts.lxd.websocket import connect_websocket  # noqa: E402
from tests.lab import start_lab  # noqa: E402
from tests.support import DashboardSession, LiveDashboard, an_instance  # noqa: E402
from tests.terminal_helpers import ACK_DELAY, ACK_EVERY, running_execs, terminal_path  # noqa: E402

MiB = 1024 * 1024
TARGET_P50_RATIO = 1.5
TARGET_ADDED_P99_MS = 10.0
TARGET_THROUGHPUT_RATIO = 0.7
TARGET_RSS_MIB = 20.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


class Direct:
    """A plain LXD exec websocket client: what `lxc exec` does, no dashboard."""

    def __init__(self, client, instance: str, command: tuple[str, ...]):
        self.client, self.instance, self.command = client, instance, command

    async def open(self) -> None:
        spec = ExecCommand(self.command, 80, 24, {"TERM": "xterm-256color"})
        attachment = await asyncio.to_thread(self.client.start_exec, self.instance, spec)
        sockets = []
        for fd in ("0", "control"):
            uri, kwargs = attachment.targets[fd]
            sockets.append(
                await connect_websocket(
                    uri, kwargs, label="bench", what="exec", max_size=None, ping_interval=None
                )
            )
        self.data, self.control = sockets
        self.operation_id = attachment.operation_id

    async def send(self, data: bytes) -> None:
        await self.data.send(data)

    async def recv(self) -> bytes | None:
        message = await self.data.recv()
        return None if isinstance(message, str) else message

    async def close(self) -> None:
        await self.control.close()
        await self.data.close()


class ThroughDashboard:
    """The dashboard's terminal socket, spoken as static/js/terminal.js speaks it: output is
    acknowledged every ACK_EVERY bytes, or ACK_DELAY after it arrived."""

    def __init__(self, base_url: str, cookies, host: str, instance: str, command: str, ack: bool = True):
        self.base_url, self.cookies, self.host, self.instance = base_url, cookies, host, instance
        self.command, self.ack = command, ack
        self.written = self.acked = 0
        self.timer: asyncio.TimerHandle | None = None

    async def open(self) -> None:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.ws = await connect(
            self.base_url.replace("http://", "ws://") + terminal_path(self.host, self.instance),
            origin=self.base_url,
            additional_headers={"Cookie": cookie},
            max_size=None,
            compression=None,
            proxy=None,
            ping_interval=None,
        )
        await self.ws.send(json.dumps({"type": "start", "command": self.command, "cols": 80, "rows": 24}))
        reply = json.loads(await self.ws.recv())
        if reply["type"] != "started":
            raise SystemExit(f"the dashboard refused the terminal: {reply}")

    async def send(self, data: bytes) -> None:
        await self.ws.send(data)

    async def acknowledge(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.written > self.acked:
            self.acked = self.written
            with contextlib.suppress(ConnectionClosed):  # the session ended meanwhile
                await self.ws.send(json.dumps({"type": "ack", "written": self.written}))

    async def recv(self) -> bytes | None:
        while True:
            message = await self.ws.recv()
            if isinstance(message, str):
                if json.loads(message)["type"] in ("exit", "error"):
                    return None
                continue
            self.written += len(message)
            if not self.ack:
                return message
            if self.written - self.acked >= ACK_EVERY:
                await self.acknowledge()
            elif self.timer is None:
                self.timer = asyncio.get_running_loop().call_later(ACK_DELAY, self._acknowledge_later)
            return message

    def _acknowledge_later(self) -> None:
        self.timer = None
        self.ack_task = asyncio.get_running_loop().create_task(self.acknowledge())

    async def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        await self.ws.close()


async def echo_once(side, key: bytes) -> float:
    started = time.perf_counter()
    await side.send(key)
    seen = b""
    while key not in seen:
        seen += await side.recv()
    elapsed = time.perf_counter() - started
    await side.send(b"\x7f")  # erase it again: the line stays short (echo "\b \b", not timed)
    seen = b""
    while b"\b" not in seen:
        seen += await side.recv()
    return elapsed


async def latency(direct: Direct, dash: ThroughDashboard, samples: int) -> dict[str, list[float]]:
    for side in (direct, dash):
        await side.open()
    times: dict[str, list[float]] = {"direct": [], "dashboard": []}
    try:
        for i in range(samples + 50):
            for name, side in (("direct", direct), ("dashboard", dash))[:: 1 if i % 2 else -1]:
                elapsed = await echo_once(side, b"x")
                if i >= 50:  # the first ones warm up both paths
                    times[name].append(elapsed * 1000)
    finally:
        for side in (direct, dash):
            await side.close()
    return times


async def drain(side) -> tuple[int, float]:
    await side.open()
    started = time.perf_counter()
    total = 0
    while (data := await side.recv()) is not None:
        total += len(data)
    elapsed = time.perf_counter() - started
    await side.close()
    return total, elapsed


async def stalled(dash: ThroughDashboard, pid: int, seconds: float) -> tuple[float, int]:
    """(daphne's peak RSS growth in MiB, bytes that reached the reader) for a reader that
    reads nothing for `seconds`, then vanishes."""
    await dash.open()
    with PeakRSS(pid) as peak:
        await asyncio.sleep(seconds)  # the reader reads nothing: the relay must hold LXD back
    reached = 0  # what waited in the reader's buffers, read now without acknowledging it
    with contextlib.suppress(TimeoutError):
        while True:
            message = await asyncio.wait_for(dash.ws.recv(), 1.0)
            reached += len(message) if isinstance(message, bytes) else 0
    dash.ws.transport.abort()  # the browser vanishes without a word
    return peak.growth_mib, reached


def report_latency(label: str, times: dict[str, list[float]]) -> None:
    direct, dash = times["direct"], times["dashboard"]
    p50_d, p50_t = statistics.median(direct), statistics.median(dash)
    p99_d, p99_t = percentile(direct, 99), percentile(dash, 99)
    ratio, added = p50_t / p50_d, p99_t - p99_d
    print(
        f"keystroke->echo {label}: direct p50 {p50_d:.2f} ms p99 {p99_d:.2f} ms; dashboard p50 {p50_t:.2f} ms "
        f"p99 {p99_t:.2f} ms ({len(dash)} keys each)"
    )
    print(
        f"  p50 ratio {ratio:.2f} (target <= {TARGET_P50_RATIO}) {verdict(ratio <= TARGET_P50_RATIO)}; "
        f"added p99 {added:.2f} ms (target <= {TARGET_ADDED_P99_MS:g} ms) {verdict(added <= TARGET_ADDED_P99_MS)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stall", type=float, default=15.0)
    args = parser.parse_args()
    flood = f"head -c {args.mib * MiB} /dev/zero | base64"

    lab = start_lab(2)
    with (
        tempfile.TemporaryDirectory(prefix="bench-terminal-") as tmp,
        an_instance(lab.d1) as on_d1,
        an_instance(lab.d2) as on_d2,
    ):
        server = LiveDashboard(Path(tmp))
        server.start()
        d2_fingerprint = ""
        try:
            server.manage("addhost", "lab1", lab.d1.socket)
            server.manage("addhost", "lab2", lab.d2.url, "--token", lab.d2.trust_token("bench-terminal"))
            session = DashboardSession(server.url, server.username, server.password)
            cookies = session.cookies
            d2_client, d2_fingerprint = https_client(lab.d2)
            for label, host, instance, client in (
                ("d1 unix socket", "lab1", on_d1, lab.d1.admin()),
                ("d2 HTTPS", "lab2", on_d2, d2_client),
            ):
                times = asyncio.run(
                    latency(
                        Direct(client, instance, ("sh",)),
                        ThroughDashboard(server.url, cookies, host, instance, "sh"),
                        args.samples,
                    )
                )
                report_latency(label, times)

            ratios, rates = [], {"direct": [], "dashboard": []}
            for _ in range(args.runs):
                sizes = {}
                for name, side in (
                    ("direct", Direct(lab.d1.admin(), on_d1, ("sh", "-c", flood))),
                    ("dashboard", ThroughDashboard(server.url, cookies, "lab1", on_d1, f"sh -c '{flood}'")),
                ):
                    total, elapsed = asyncio.run(drain(side))
                    sizes[name] = total
                    rates[name].append(total / MiB / elapsed)
                ratios.append(rates["dashboard"][-1] / rates["direct"][-1])
            ratio = statistics.median(ratios)
            print(
                f"throughput of `{flood}` ({sizes['direct'] / MiB:.0f} MiB of output): direct "
                f"{statistics.median(rates['direct']):.1f} MiB/s, dashboard {statistics.median(rates['dashboard']):.1f} MiB/s"
            )
            print(
                f"  ratio {ratio:.2f} (median of {', '.join(f'{r:.2f}' for r in ratios)}; target >= "
                f"{TARGET_THROUGHPUT_RATIO}) {verdict(ratio >= TARGET_THROUGHPUT_RATIO)}"
            )

            stall = ThroughDashboard(server.url, cookies, "lab1", on_d1, "yes", ack=False)
            growth, reached = asyncio.run(stalled(stall, server.proc.pid, args.stall))
            deadline = time.monotonic() + 30
            while (left := running_execs(lab.d1, on_d1)) and time.monotonic() < deadline:
                time.sleep(0.2)
            print(
                f"stalled reader (`yes`, nothing read for {args.stall:g} s): daphne peak RSS growth {growth:.1f} MiB "
                f"(target <= {TARGET_RSS_MIB:g} MiB) {verdict(growth <= TARGET_RSS_MIB)}; "
                f"{reached / 1024:.0f} KiB reached the reader (the window: {OUTPUT_WINDOW // 1024} KiB)"
            )
            print(
                f"  after the reader vanished: {len(left)} exec operation(s) left running on the instance "
                f"(target 0) {verdict(not left)}"
            )
        finally:
            server.stop()
            if d2_fingerprint:
                lab.d2.admin().delete_certificate(d2_fingerprint)
    return 0


def https_client(daemon):
    """A direct client of `daemon` over HTTPS with a certificate of its own, trusted through the
    unix socket, and the server's certificate pinned: `lxc` on another machine.  Removed after."""
    generated = generate_client_certificate("bench-terminal-direct")
    admin = daemon.admin()
    admin.add_trusted_certificate(generated.certificate_pem, name="bench-terminal-direct")
    endpoint = parse_endpoint(daemon.url)
    server_pem = fetch_server_certificate(endpoint.host, endpoint.port, timeout=5)
    tls = TLSIdentity(server_pem, generated.certificate_pem, generated.private_key_pem)
    return LXDClient(endpoint, tls=tls, label="d2", timeout=(5, 60)), generated.fingerprint


if __name__ == "__main__":
    raise SystemExit(main())
