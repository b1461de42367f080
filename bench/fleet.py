#!/usr/bin/env python
"""Fleet page figures against direct LXD calls made in the same run (not a timed test).

    LAB_ID=1 .venv/bin/python bench/fleet.py

Sets up 3 lab daemons x 50 instances (20 running on each); the third daemon is reached through
a delaying TCP proxy written here (+300 ms on everything the client sends, i.e. per request).
The dashboard runs under daphne in its own process and data directory; a client logs in, loads
the fleet page and then its lazy per-host state parts, as a browser does.

- first paint: the fleet page's time / the slowest host's direct recursion=1 call;
- complete: time until every state cell is filled / the slowest host's direct recursion=2 call;
- 500 instances on one host: first paint / direct recursion=1.
Per-round ratios (page and direct call back to back), median over BENCH_ROUNDS rounds after
BENCH_WARMUP warm-up rounds; the ratio of the medians is printed too. Direct calls use the same
transport as the dashboard (unix socket, pinned HTTPS, HTTPS through the proxy).
Everything the bench creates (instances, certificates, the dashboard's data) is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
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

from hosts.lxd import (  # noqa: E402
    LXDClient,
    LXDError,
    TLSIdentity,  # noqa: E402
)
from hosts.lxd.certs import generate_client_certificate  # noqa: E402
from tests.lab import start_lab  # noqa: E402
from tests.support import LiveDashboard  # noqa: E402

PREFIX = "fbench-"
PER_HOST, RUNNING = 50, 20
BIG = 500
DELAY = 0.3
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "11"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))


class DelayProxy:
    """TCP proxy on 127.0.0.1 that delivers what the client sends DELAY seconds late (a
    delay line, not a throttle): each request, TLS included, arrives DELAY later."""

    def __init__(self, target_port: int, delay: float):
        self.target_port, self.delay = target_port, delay
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> DelayProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(
                self._pump(reader, up_writer, self.delay),
                self._pump(up_reader, writer, 0.0),
                return_exceptions=True,
            )
        except (OSError, asyncio.CancelledError):
            # refused upstream, or the proxy shutting down: end this connection quietly
            writer.close()

    async def _pump(self, src, dst, delay: float) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        async def read() -> None:
            while True:
                data = await src.read(65536)
                await queue.put((self.loop.time() + delay, data))
                if not data:
                    return

        async def write() -> None:
            while True:
                due, data = await queue.get()
                if (wait := due - self.loop.time()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    dst.close()
                    return
                dst.write(data)
                await dst.drain()

        await asyncio.gather(read(), write())


def follow_all(admin: LXDClient, ops) -> None:
    """Wait for every operation at once: waiting one after the other lets an operation that
    ended early vanish (LXD keeps finished ones 5 s); callers check the outcome themselves."""

    def one(op) -> None:
        if op.id:
            with contextlib.suppress(LXDError):
                admin.wait(op, timeout=600)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, ops))


def make_instances(admin: LXDClient, names: list[str], running: int) -> None:
    for start in range(0, len(names), 50):
        chunk = names[start : start + 50]
        follow_all(
            admin,
            [
                admin.create_instance({"name": n, "source": {"type": "image", "alias": "busybox"}})
                for n in chunk
            ],
        )
    follow_all(admin, [admin.change_state(n, "start") for n in names[:running]])
    status = {i["name"]: i["status"] for i in admin.instances(1)}
    wrong = [n for i, n in enumerate(names) if status.get(n) != ("Running" if i < running else "Stopped")]
    if wrong:
        raise RuntimeError(f"{admin.label}: {len(wrong)} instances not as expected, e.g. {wrong[:3]}")


def remove_instances(admin: LXDClient) -> None:
    mine = [i for i in admin.instances(1) if i["name"].startswith(PREFIX)]
    follow_all(
        admin, [admin.change_state(i["name"], "stop", force=True) for i in mine if i["status"] != "Stopped"]
    )
    for start in range(0, len(mine), 50):
        follow_all(admin, [admin.delete_instance(i["name"]) for i in mine[start : start + 50]])
    left = [i["name"] for i in admin.instances(1) if i["name"].startswith(PREFIX)]
    if left:
        raise RuntimeError(f"{admin.label}: could not remove {len(left)} bench instances, e.g. {left[:3]}")


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


class Client:
    """What a browser does: log in, load the page, then its lazy parts in parallel."""

    def __init__(self, server: LiveDashboard):
        self.base = server.url
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.get(self.base + "/accounts/login/")
        token = self.session.cookies["csrftoken"]
        response = self.session.post(
            self.base + "/accounts/login/",
            data={"username": server.username, "password": server.password, "csrfmiddlewaretoken": token},
            headers={"Referer": self.base + "/accounts/login/"},
        )
        assert "/accounts/login/" not in response.url, "login failed"
        self.pool = ThreadPoolExecutor(8)

    def page(self) -> tuple[float, str]:
        started = time.perf_counter()
        response = self.session.get(self.base + "/")
        response.raise_for_status()
        return time.perf_counter() - started, response.text

    def load(self) -> tuple[float, float, int, int]:
        """(first paint, complete, state cells filled, rows)."""
        started = time.perf_counter()
        response = self.session.get(self.base + "/")
        first = time.perf_counter() - started
        html = response.text
        urls = [u.replace("&amp;", "&") for u in re.findall(r'hx-get="(/fleet/state/[^"]+)"', html)]
        cookies = self.session.cookies

        def lazy(url: str) -> str:
            return requests.get(self.base + url, cookies=cookies, timeout=120).text

        parts = list(self.pool.map(lazy, urls))
        complete = time.perf_counter() - started
        filled = sum(len(re.findall(r'<td id="instance-[^"]+-memory" class="num"', part)) for part in parts)
        rows = len(re.findall(r'<tr id="instance-', html))
        return first, complete, filled, rows


def trust_bench_certificate(daemon, pem_body: str) -> None:
    daemon.admin().call(
        "POST",
        "/1.0/certificates",
        json_body={"type": "client", "name": "fleet-bench", "certificate": pem_body},
        project_scoped=False,
    )


def ratio_line(label: str, num: list[float], den: list[float], target: float, what: tuple[str, str]) -> str:
    """Each round's page and direct call are measured back to back, so the per-round ratio is
    the figure (the machine's load drifts between rounds); the ratio of medians is shown too."""
    n, d = statistics.median(num), statistics.median(den)
    paired = statistics.median(a / b for a, b in zip(num, den, strict=True))
    verdict = "ok" if paired <= target else "MISSED"
    return (
        f"{label}: {what[0]} / {what[1]} = {paired:.2f} (target <= {target}, {verdict}; median of "
        f"{len(num)} rounds; medians {n * 1000:.0f} ms / {d * 1000:.0f} ms = {n / d:.2f})"
    )


def main() -> int:
    lab = start_lab(3)
    d1, d2, d3 = lab.daemons
    admins = {d.name: d.admin() for d in lab.daemons}
    for admin in admins.values():
        admin.timeout = (5, 300)
        remove_instances(admin)
    data_dir = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    server = LiveDashboard(data_dir)
    proxy = DelayProxy(int(d3.url.rsplit(":", 1)[1]), DELAY).start()
    cert = generate_client_certificate("fleet-bench")
    pem_body = "".join(cert.certificate_pem.strip().splitlines()[1:-1])
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
            tls = TLSIdentity(server_pem, cert.certificate_pem, cert.private_key_pem)
            return LXDClient(url, tls=tls, timeout=(5, 300))

        direct = {
            "b1": LXDClient(d1.socket, timeout=(5, 300)),
            "b2": pinned(d2.url, d2),
            "b3-slow": pinned(slow_url, d3),
        }
        client = Client(server)
        cold_first, _ = client.page()
        first, complete, r1_max, r2_max = [], [], [], []
        for round_ in range(WARMUP + ROUNDS):
            r1 = {h: timed(lambda c=c: c.instances(1)) for h, c in direct.items()}
            fp, comp, filled, rows = client.load()
            r2 = {h: timed(lambda c=c: c.instances(2)) for h, c in direct.items()}
            assert rows == 3 * PER_HOST and filled == 3 * PER_HOST, (rows, filled)
            print(
                f"  round {round_}: page {fp * 1000:.0f} ms, complete {comp * 1000:.0f} ms; direct r1 "
                + ", ".join(f"{h} {t * 1000:.0f}" for h, t in r1.items())
                + " ms; r2 "
                + ", ".join(f"{h} {t * 1000:.0f}" for h, t in r2.items())
                + " ms"
                + (" (warm-up)" if round_ < WARMUP else ""),
                flush=True,
            )
            if round_ >= WARMUP:
                first.append(fp)
                complete.append(comp)
                r1_max.append(max(r1.values()))
                r2_max.append(max(r2.values()))
        lines.append(
            ratio_line(
                "first paint, 3 hosts x 50 (one +300 ms)",
                first,
                r1_max,
                1.3,
                ("page", "slowest direct recursion=1"),
            )
        )
        lines.append(
            ratio_line(
                "complete, 3 hosts x 50 (one +300 ms)",
                complete,
                r2_max,
                1.3,
                ("all state cells filled", "slowest direct recursion=2"),
            )
        )

        print(f"adding {BIG - PER_HOST} stopped instances on d1; the dashboard keeps only b1 ...", flush=True)
        make_instances(admins["d1"], [f"{PREFIX}x{i:03d}" for i in range(BIG - PER_HOST)], 0)
        server.manage("removehost", "b2", "--revoke")
        server.manage("removehost", "b3-slow", "--revoke")
        cold_big, _ = client.page()
        big_first, big_r1 = [], []
        for round_ in range(WARMUP + ROUNDS):
            r1 = timed(lambda: direct["b1"].instances(1))
            fp, comp, filled, rows = client.load()
            assert rows == BIG and filled == BIG, (rows, filled)
            print(
                f"  round {round_}: page {fp * 1000:.0f} ms (complete {comp * 1000:.0f} ms); "
                f"direct r1 {r1 * 1000:.0f} ms" + (" (warm-up)" if round_ < WARMUP else ""),
                flush=True,
            )
            if round_ >= WARMUP:
                big_first.append(fp)
                big_r1.append(r1)
        lines.append(
            ratio_line(
                f"first paint, {BIG} instances on one host",
                big_first,
                big_r1,
                1.5,
                ("page", "direct recursion=1"),
            )
        )
        lines.append(
            f"(first page load with cold row cache: {cold_first * 1000:.0f} ms for 150 rows, "
            f"{cold_big * 1000:.0f} ms for {BIG} rows)"
        )
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
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
