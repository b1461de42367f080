"""The scale-out mode, as deployed (tests/scale.py): PostgreSQL, Redis, two daphne processes and
two `manage.py relay`, each its own process, on the real lab daemons."""

from __future__ import annotations

import asyncio
import html

import psycopg
import pytest

from tests.scale import frame_matching, live_socket, login_cookie, status_cell
from tests.support import DashboardSession, ListenerLog, tcp_local_ports, wait_until


@pytest.fixture
def container(lab, instances):
    return instances.make(lab.d1, running=False)


def tasks_of(scale, operation_ids: list[str]) -> list[tuple[str, str]]:
    with psycopg.connect(scale.database_url) as conn:
        rows = conn.execute(
            "SELECT operation_id, status FROM hosts_task WHERE host_name = 'lab1' AND operation_id = ANY(%s)",
            [operation_ids],
        ).fetchall()
    return sorted(rows)


async def final_tasks(scale, operation_ids: list[str]) -> list[tuple[str, str]]:
    """The task log's rows for these operations once each has its outcome (the relay writes
    in batches), or what it has after 10 s."""
    for _ in range(100):
        rows = tasks_of(scale, operation_ids)
        if len(rows) == len(operation_ids) and all(status != "running" for _, status in rows):
            break
        await asyncio.sleep(0.1)
    return rows


async def test_one_relay_relays_with_one_events_connection_per_host(scale, lab):
    active = await asyncio.to_thread(scale.wait_until_relaying)
    assert [r.name for r in scale.active_relays()] == [active.name]
    d2_port = int(lab.d2.url.rsplit(":", 1)[1])
    async with ListenerLog(lab.d2.socket) as listeners:
        await asyncio.sleep(0.5)  # the log stream reports listeners opened from here on only
        # ... so make every relay's connection new: restart the active one's hosts by killing
        # it; the standby connects afresh
        active.kill()
        relay = await asyncio.to_thread(scale.wait_until_relaying)
        ports = {p: tcp_local_ports(p.pid, d2_port) for p in scale.relays if p.alive()}
        per_relay = {
            p.name: [
                r
                for r in listeners.open_from(lambda r: r.startswith("127.0.0.1:"))
                if int(r.rsplit(":", 1)[1]) in local
            ]
            for p, local in ports.items()
        }
    scale.relay()  # a standby again, for the tests after this one
    assert {name: len(found) for name, found in per_relay.items()} == {
        p.name: (1 if p is relay else 0) for p in ports
    }


async def test_a_killed_relay_is_replaced_and_no_operation_goes_unrecorded(scale, lab, container):
    web = scale.webs[1]
    ws = await live_socket(web, await asyncio.to_thread(login_cookie, web.url))
    try:
        active = await asyncio.to_thread(scale.wait_until_relaying)
        admin = lab.d1.admin()
        active.kill()
        # Operations while no relay watches: they are over before the standby connects.
        made = []
        for action in ("start", "stop"):
            op = await asyncio.to_thread(admin.change_state, container, action, force=True)
            made.append(op.id)
            await asyncio.to_thread(admin.wait, op)
        standby = await asyncio.to_thread(scale.wait_until_relaying)
        assert standby is not active
        # The new relay found both in LXD's list (kept 5 s after the end) and recorded them.
        assert await final_tasks(scale, made) == sorted((op_id, "success") for op_id in made)
        # ... and pages hear from it.
        op = await asyncio.to_thread(admin.change_state, container, "start")
        await frame_matching(
            ws, status_cell("lab1", container, "Running"), what="the start from the new relay"
        )
        await asyncio.to_thread(admin.wait, op)
        made.append(op.id)
        assert await final_tasks(scale, made) == sorted((op_id, "success") for op_id in made)
    finally:
        await ws.close()
        if len([r for r in scale.relays if r.alive()]) < 2:
            scale.relay()


async def test_every_socket_on_either_web_process_gets_the_same_bytes(scale, lab, container):
    """Three sockets on web1, two on web2 (one login): an `lxc start` reaches all five as the
    same status cell, byte for byte (each web process renders it once for all its sockets)."""
    await asyncio.to_thread(scale.wait_until_relaying)
    cookies = [await asyncio.to_thread(login_cookie, web.url) for web in scale.webs[:2]]
    sockets = [await live_socket(scale.webs[0], cookies[0]) for _ in range(3)]
    sockets += [await live_socket(scale.webs[1], cookies[1]) for _ in range(2)]
    try:
        await asyncio.to_thread(lab.d1.lxc, "start", container)
        cells = await asyncio.gather(
            *(
                frame_matching(ws, status_cell("lab1", container, "Running"), what="the start")
                for ws in sockets
            )
        )
        assert len(set(cells)) == 1, cells
    finally:
        for ws in sockets:
            await ws.close()
        await asyncio.to_thread(lab.d1.lxc, "stop", "--force", container, check=False)


@pytest.mark.destructive
async def test_a_redis_restart_interrupts_live_pages_and_they_catch_up_without_reconnecting(
    scale, lab, container
):
    """Redis restarted (empty: no groups): the pages of both web processes say live updates
    are interrupted, then refresh their tables (live-resync) and get changes again on the same
    sockets; still one relay relays."""
    from tests.scale import redis_down, services_up

    await asyncio.to_thread(scale.wait_until_relaying)
    cookies = [await asyncio.to_thread(login_cookie, web.url) for web in scale.webs[:2]]
    sockets = [await live_socket(web, cookie) for web, cookie in zip(scale.webs, cookies, strict=False)]
    try:
        try:
            await asyncio.to_thread(redis_down, lab)
            for ws in sockets:
                await frame_matching(
                    ws, lambda f: "Live updates are interrupted" in f, timeout=30, what="the notice"
                )
        finally:
            await asyncio.to_thread(services_up)
        for ws in sockets:
            await frame_matching(ws, lambda f: 'id="live-resync"' in f, timeout=30, what="the catch-up")
        await asyncio.to_thread(lab.d1.lxc, "start", container)
        for ws in sockets:
            await frame_matching(
                ws, status_cell("lab1", container, "Running"), what="the start after Redis came back"
            )
        assert len(scale.active_relays()) == 1
        # The restart was the hubs' one failure: an idle hub's blocking receive is no failure
        # (redis-py 8 timed every read out after 5 s, as long as channels-redis' pop waits).
        assert [web.output().count("the channel layer failed") for web in scale.webs] == [1, 1]
    finally:
        for ws in sockets:
            await ws.close()
        await asyncio.to_thread(lab.d1.lxc, "stop", "--force", container, check=False)


@pytest.mark.destructive
def test_a_postgres_restart_gives_a_clear_error_then_everything_carries_on(scale, lab, container):
    """PostgreSQL stopped as a crash would, an action asked for meanwhile: a 503 that says so,
    nothing sent to the host, nothing recorded.  Once it is back, the same login on the same web
    process acts again, the action is audited once, and one relay records what LXD did."""
    from dashboard.errors import UNAVAILABLE
    from tests.scale import postgres_down, services_up

    said = html.escape(UNAVAILABLE)

    web = scale.webs[0]
    session = DashboardSession(web.url, scale.username, scale.password)
    action = f"/hosts/lab1/instances/{container}/state/start/"
    try:
        postgres_down(lab)
        refused = session.post(action, headers={"HX-Request": "true"})
        assert refused.status_code == 503, refused.text[:500]
        assert said in refused.text and "Traceback" not in refused.text
        page = session.get("/")
        assert page.status_code == 503 and said in page.text
        assert lab.d1.admin().instance(container)["status"] == "Stopped"
    finally:
        services_up()
    done = session.post(action, headers={"HX-Request": "true"})
    assert done.status_code == 200, done.text[:500]
    wait_until(lambda: lab.d1.admin().instance(container)["status"] == "Running", 30, "the start")
    with psycopg.connect(scale.database_url) as conn:
        audited = conn.execute(
            "SELECT outcome FROM hosts_auditentry WHERE action = 'instance.start' AND target = %s",
            [container],
        ).fetchall()
        operation = conn.execute(
            "SELECT operation_id FROM hosts_auditentry WHERE action = 'instance.start' AND target = %s",
            [container],
        ).fetchone()
    assert audited == [("ok",)]
    scale.wait_until_relaying()
    assert len(scale.active_relays()) == 1
    wait_until(
        lambda: tasks_of(scale, [operation[0]]) == [(operation[0], "success")],
        15,
        "the start in the task log, once",
    )
