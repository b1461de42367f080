"""Benchmark: live sockets that follow their login (hosts/socket_auth.py), at scale.

    .venv/bin/python bench/socket_auth.py [--sockets 1000] [--users 10] [--idle 10]

A daphne server (in its own process, its own SQLite file, in-memory channel layer) with
`--sockets` live sockets open, spread over `--users` logins.  Prints:
1. the server's CPU use while the sockets sit idle (no polling: should be ~0),
2. how long after a logout (POST /accounts/logout/) every socket of that session is closed
   (code 4401), and that every other socket is still open,
3. the same after an admin deactivates another user in Django's admin (code 4403).
No LXD host is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import DashboardSession, LiveDashboard, form_fields  # noqa: E402

PASSWORD = "bench-socket-auth-1"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Socket:
    def __init__(self, ws, user: str):
        self.ws, self.user = ws, user
        self.closed_at: float | None = None
        self.code: int | None = None

    async def read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for _ in self.ws:
                pass
        self.closed_at, self.code = time.monotonic(), self.ws.close_code


async def open_sockets(
    server: LiveDashboard, sessions: dict[str, DashboardSession], count: int
) -> list[Socket]:
    names = list(sessions)
    opened: list[Socket] = []
    for i in range(count):
        user = names[i % len(names)]
        cookie = sessions[user].cookie_header()
        ws = await connect(
            server.url.replace("http://", "ws://") + "/ws/live/?topics=hosts",
            additional_headers={"Cookie": cookie, "Origin": server.url},
            proxy=None,
        )
        opened.append(Socket(ws, user))
    return opened


async def until_closed(sockets: list[Socket], started: float, timeout: float = 60) -> tuple[float, set]:
    deadline = time.monotonic() + timeout
    while any(s.closed_at is None for s in sockets) and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    if any(s.closed_at is None for s in sockets):
        raise SystemExit(f"{sum(s.closed_at is None for s in sockets)} sockets still open after {timeout} s")
    return max(s.closed_at for s in sockets) - started, {s.code for s in sockets}


async def main(args) -> None:
    server = LiveDashboard(Path(tempfile.mkdtemp(prefix="bench-socket-auth-")))
    server.start()
    try:
        users = [f"bench{i}" for i in range(args.users)]
        server.create_users(users, "operator", PASSWORD)
        sessions = {u: await asyncio.to_thread(server.login, u, PASSWORD) for u in users}
        began = time.monotonic()
        sockets = await open_sockets(server, sessions, args.sockets)
        readers = [asyncio.get_running_loop().create_task(s.read()) for s in sockets]
        print(f"{len(sockets)} sockets over {args.users} logins open in {time.monotonic() - began:.1f} s")

        cpu = cpu_seconds(server.proc.pid)
        await asyncio.sleep(args.idle)  # measuring idleness: nothing to wait for
        idle = (cpu_seconds(server.proc.pid) - cpu) / args.idle
        print(f"server CPU while {len(sockets)} sockets sit idle: {idle * 100:.1f} % of a core")

        out, gone = users[0], users[1]
        started = time.monotonic()
        assert (await asyncio.to_thread(sessions[out].post, "/accounts/logout/")).status_code == 302
        took, codes = await until_closed([s for s in sockets if s.user == out], started)
        others = sum(s.closed_at is None for s in sockets if s.user != out)
        print(
            f"logout: its {sum(s.user == out for s in sockets)} sockets closed (codes {sorted(codes)}) "
            f"within {took * 1000:.0f} ms of the request; {others} other sockets still open"
        )

        admin = await asyncio.to_thread(server.login)
        listing = (await asyncio.to_thread(admin.get, f"/admin/auth/user/?q={gone}")).text
        change = re.search(r"/admin/auth/user/\d+/change/", listing).group(0)
        fields = form_fields((await asyncio.to_thread(admin.get, change)).text, "user_form")
        fields.pop("is_active")
        started = time.monotonic()
        assert (await asyncio.to_thread(admin.post, change, {**fields, "_save": "Save"})).status_code == 302
        took, codes = await until_closed([s for s in sockets if s.user == gone], started)
        others = sum(s.closed_at is None for s in sockets if s.user not in (out, gone))
        print(
            f"deactivation in the admin: its {sum(s.user == gone for s in sockets)} sockets closed "
            f"(codes {sorted(codes)}) within {took * 1000:.0f} ms of the request; {others} other sockets still open"
        )
        for s in sockets:
            await s.ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idleness to measure")
    asyncio.run(main(parser.parse_args()))
