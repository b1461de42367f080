"""Start the relay's worker (the events relay and the backup scheduler) when the web server
starts, not at the first browser socket: scheduled backups must run with no browser open.

Daphne runs the ASGI app on Twisted's asyncio reactor; `reactor.callWhenRunning` calls us once
the reactor (and so the asyncio loop the app runs on) is running.  `install()` is called from
dashboard/asgi.py, which `daphne dashboard.asgi:application` and `manage.py runserver` both
import after daphne.server has installed that reactor.  Under any other server (or when the
app is merely imported, by a test) it does nothing: the relay then still starts with the first
browser socket, and `manage.py relay` runs both in external mode.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from django.conf import settings

log = logging.getLogger(__name__)


def install() -> bool:
    if "daphne.server" not in sys.modules or settings.DASHBOARD_RELAY != "embedded":
        return False
    from twisted.internet import asyncioreactor, reactor

    if not isinstance(reactor, asyncioreactor.AsyncioSelectorReactor):
        return False
    reactor.callWhenRunning(_start, reactor._asyncioEventloop)
    return True


def _start(loop: asyncio.AbstractEventLoop) -> None:
    from hosts.live.scheduler import start_worker

    task = loop.create_task(start_worker(), name="worker-start")
    task.add_done_callback(_report)


def _report(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("could not start the relay and the scheduler", exc_info=task.exception())
