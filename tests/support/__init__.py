"""The tests' factories and helpers, in one place (fixtures that use them: tests/conftest.py).

Instances (support/instances.py): every test-made instance or profile is named `t-...`
    new_name(tag="") -> "t-[tag-]<hex>"
    Instances: .make(daemon, name=None, running=True, ip=None, image="busybox", config=None),
               .track(daemon, name), .name(tag=""), .cleanup()      (the `instances` fixture)
    an_instance(daemon, **make_options): a context manager (module-scoped fixtures)
    status_of(daemon, name); push/pull/head/mkdir(daemon, name, path, ...): straight to LXD
    sweep_leftovers(daemons): what an interrupted run left (run at session start)
Logins (support/users.py, support/dashboard.py): all through the login form, or force_login
    make_user(username, role=None, password=PASSWORD, superuser=False); logged_in(user, client=None)
    LiveDashboard(tmp): daphne in its own process: .start(), .serve(), .stop(), .manage(...),
        .login(username=None, password=None) -> DashboardSession, .ensure_lab_hosts(lab),
        .create_users(names, role), .audit_entries(**filters), .audit_outcomes(usernames)
    DashboardSession(base_url, username, password): .get/.post/.put(path), .cookie_header()
    log_in_browser(context, live, username, password); ws_upload(session, host, name, path, ...)
Waits (support/waits.py): on conditions, never on the clock
    wait_until(predicate, timeout, what); await wait_until_async(predicate, timeout, what)
    await relay_synced(host, relay=None); operation_forgotten(daemon, operation_id)
HTML (support/html.py): cell(html, dom_id), loader_urls(html), form_fields(page, form_id)
The live path (support/channels.py): fresh_channel_layer(), Inbox, ListenerLog, tcp_local_ports
"""

from tests.support.channels import Inbox, ListenerLog, fresh_channel_layer, tcp_local_ports
from tests.support.dashboard import (
    DashboardSession,
    LiveDashboard,
    free_port,
    log_in_browser,
    port_open,
    ws_upload,
)
from tests.support.html import cell, form_fields, loader_urls
from tests.support.instances import (
    PREFIX,
    Instances,
    an_instance,
    head,
    mkdir,
    new_name,
    pull,
    push,
    status_of,
    sweep_leftovers,
)
from tests.support.users import PASSWORD, logged_in, make_user
from tests.support.waits import operation_forgotten, relay_synced, wait_until, wait_until_async

__all__ = [
    "PASSWORD",
    "PREFIX",
    "DashboardSession",
    "Inbox",
    "Instances",
    "ListenerLog",
    "LiveDashboard",
    "cell",
    "form_fields",
    "free_port",
    "fresh_channel_layer",
    "head",
    "an_instance",
    "loader_urls",
    "log_in_browser",
    "logged_in",
    "make_user",
    "mkdir",
    "new_name",
    "operation_forgotten",
    "port_open",
    "pull",
    "push",
    "relay_synced",
    "status_of",
    "sweep_leftovers",
    "tcp_local_ports",
    "wait_until",
    "wait_until_async",
    "ws_upload",
]
