"""Benchmark: a large file down and up through the dashboard, and the same directly with LXD.

    LAB_ID=<id> .venv/bin/python bench/files.py [--mib 256] [--runs 3]

Starts the lab (bin/lab), a throw-away container, and the dashboard under a real daphne in a
subprocess (its own SQLite file), logs in over HTTP, then times, in one run:
  - direct: LXDClient over the unix socket, as the dashboard itself talks to LXD;
  - download through the dashboard (streamed GET);
  - upload through the dashboard over the websocket the page uses;
  - upload through the dashboard with a raw HTTP PUT (for API clients).
Each dashboard transfer is paired with the same transfer made directly just before it, and the
throughput ratio is the median over the pairs; memory is the daphne process' peak RSS (VmHWM, reset
through /proc/PID/clear_refs before each transfer, and sampled every 10 ms) above its RSS just
before the transfer.  One summary line per figure.

Everything (this client, daphne, LXD) shares the machine's CPUs: direct transfers cost LXD about
1.2 CPU-s per 256 MiB, the websocket path adds about 0.45 CPU-s in daphne and 0.4 in the client
(masking and framing, which a browser does on its own machine), so on a small, busy machine the
upload ratio is bounded by CPU rather than by waiting.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lab import start_lab  # noqa: E402
from tests.support import LiveDashboard, an_instance, ws_upload  # noqa: E402

MiB = 1024 * 1024
HOST = "benchlab"
TARGET_RATIO = 0.7
TARGET_RSS_MIB = 30


def status_kib(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":")
            values[key] = int(value.split()[0])
    return values


class PeakRSS:
    """Peak RSS growth of a process during a block, in MiB."""

    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self):
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        self.base = status_kib(self.pid)["VmRSS"]
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, status_kib(self.pid)["VmRSS"])

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, status_kib(self.pid)["VmHWM"])
        self.growth_mib = (self.peak - self.base) / 1024


def file_chunks(path: Path, size: int = MiB):
    with open(path, "rb") as fh:
        while chunk := fh.read(size):
            yield chunk


class Sized:
    def __init__(self, chunks, length):
        self.chunks, self.length = chunks, length

    def __iter__(self):
        return iter(self.chunks)

    def __len__(self):
        return self.length


def timed(fn) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.mib * MiB

    lab = start_lab(2)
    admin = lab.d1.admin()
    with tempfile.TemporaryDirectory(prefix="bench-files-") as tmp, an_instance(lab.d1) as name:
        tmp = Path(tmp)
        source = tmp / "source.bin"
        with open(source, "wb") as fh:
            for _ in range(args.mib):
                fh.write(os.urandom(MiB))
        digest = hashlib.sha256(source.read_bytes()).hexdigest()

        server = LiveDashboard(tmp / "dashboard")
        server.tmp.mkdir(mode=0o700)  # the dashboard refuses a data directory others can read
        # let the raw PUT take the whole file, to measure what it costs (64 MiB cap by default)
        server.env["DASHBOARD_MAX_HTTP_UPLOAD_BYTES"] = str(2 * size)
        server.start()
        try:
            server.manage("addhost", HOST, lab.d1.socket)
            session = server.login()
            base = f"{server.url}/hosts/{HOST}/instances/{name}/files"
            pid = server.proc.pid

            def direct_up():
                admin.push_file(name, "/root/direct.bin", Sized(file_chunks(source), size))

            def direct_down():
                _, response = admin.open_file(name, "/root/direct.bin")
                got = sum(len(c) for c in response.iter_content(MiB))
                response.close()
                assert got == size

            def dash_down():
                response = session.get(f"{base}/download/?path=/root/direct.bin", stream=True, timeout=120)
                assert response.status_code == 200, response.text[:300]
                got = sum(len(c) for c in response.iter_content(MiB))
                assert got == size, got

            def dash_slow_down():  # a reader at about 100 MiB/s: the server must wait, not buffer
                response = session.get(f"{base}/download/?path=/root/direct.bin", stream=True, timeout=120)
                for _chunk in response.iter_content(MiB):
                    time.sleep(0.01)

            def dash_ws_up():
                reply = ws_upload(
                    session, HOST, name, "/root/ws.bin", file_chunks(source), size, overwrite=True
                )
                assert reply["type"] == "done", reply

            def dash_put_up():
                with open(source, "rb") as fh:
                    response = session.put(
                        f"{base}/upload/?path=/root/put.bin&overwrite=1", data=fh, timeout=300
                    )
                assert response.status_code in (200, 201), response.text[:300]

            # warm up every path once (imports, connection pools, first page renders)
            direct_up()
            session.get(f"{base}/download/?path=/etc/hosts", timeout=30)
            assert ws_upload(session, HOST, name, "/root/warm", [b"x" * 1000], 1000)["type"] == "done"
            session.put(f"{base}/upload/?path=/root/warm2", data=b"x" * 1000, timeout=30)

            # Each dashboard transfer is timed right after the same transfer done directly, and the
            # ratio is taken per pair: on a shared machine the load drifts between runs.
            times: dict[str, list[float]] = {k: [] for k in ("direct", "down", "ws up", "put up")}
            times.update({"direct up": [], "direct down": [], "direct up (put)": []})
            rss: dict[str, float] = {"down": 0.0, "slow down": 0.0, "ws up": 0.0, "put up": 0.0}
            for _ in range(args.runs):
                times["direct down"].append(timed(direct_down))
                with PeakRSS(pid) as peak:
                    times["down"].append(timed(dash_down))
                rss["down"] = max(rss["down"], peak.growth_mib)
                times["direct up"].append(timed(direct_up))
                with PeakRSS(pid) as peak:
                    times["ws up"].append(timed(dash_ws_up))
                rss["ws up"] = max(rss["ws up"], peak.growth_mib)
            with PeakRSS(pid) as peak:
                dash_slow_down()
            rss["slow down"] = peak.growth_mib
            _, pulled = admin.open_file(name, "/root/ws.bin")
            ws_ok = hashlib.sha256(b"".join(pulled.iter_content(MiB))).hexdigest() == digest
            # last: daphne keeps the memory a buffered request body took
            for _ in range(args.runs):
                times["direct up (put)"].append(timed(direct_up))
                with PeakRSS(pid) as peak:
                    times["put up"].append(timed(dash_put_up))
                rss["put up"] = max(rss["put up"], peak.growth_mib)
        finally:
            server.stop()

    def rate(seconds: float) -> float:
        return size / MiB / seconds

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print(f"# {args.mib} MiB, {args.runs} runs, unix socket host; websocket upload sha256 ok: {ws_ok}")
    for label, dash, direct in (
        ("download", "down", "direct down"),
        ("upload (websocket)", "ws up", "direct up"),
        ("upload (HTTP PUT)", "put up", "direct up (put)"),
    ):
        ratios = [
            d / t for d, t in zip(times[direct], times[dash], strict=True)
        ]  # rate ratio = inverse time ratio
        ratio = statistics.median(ratios)
        print(
            f"{label} throughput ratio {ratio:.2f} (median of {', '.join(f'{r:.2f}' for r in ratios)}; "
            f"dashboard {rate(statistics.median(times[dash])):.0f} MiB/s, "
            f"direct {rate(statistics.median(times[direct])):.0f} MiB/s; target >= {TARGET_RATIO}) "
            f"{verdict(ratio >= TARGET_RATIO)}"
        )
    for key, label in (
        ("down", "download"),
        ("slow down", "download to a slow reader"),
        ("ws up", "upload (websocket)"),
        ("put up", "upload (HTTP PUT)"),
    ):
        print(
            f"peak RSS growth {label} {rss[key]:.1f} MiB (target <= {TARGET_RSS_MIB} MiB) {verdict(rss[key] <= TARGET_RSS_MIB)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
