"""`manage.py relay`: the events relay as its own process.

Run it when the channel layer is cross-process (REDIS_URL set, which makes DASHBOARD_RELAY
"external"): every web worker then shares one upstream events connection per host.  Run two
(on two machines) for failover: only the one holding the deployment's lock relays, the other
stands by and takes over when it dies (hosts/live/leader.py).  SIGTERM or SIGINT stops it
cleanly (host tasks cancelled and awaited, the task log flushed, the lock released).
"""

import asyncio
import contextlib
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from ...live.leader import lead
from ...live.relay import Relay
from ...live.scheduler import Scheduler


class Command(BaseCommand):
    help = "Run the events relay (one /1.0/events connection per registered host) and the backup scheduler."

    def add_arguments(self, parser):
        parser.add_argument(
            "--hosts-poll", type=float, default=5.0, help="seconds between re-reads of the host list"
        )

    def handle(self, *args, **opts):
        if (
            settings.DASHBOARD_RELAY == "embedded"
            and "InMemory" in settings.CHANNEL_LAYERS["default"]["BACKEND"]
        ):
            self.stderr.write(
                "warning: the channel layer is in-memory, so browsers served by other processes "
                "will not see this relay's messages (the task log is still written)."
            )
        asyncio.run(self._run(opts["hosts_poll"]))
        self.stdout.write("relay stopped")

    async def _run(self, hosts_poll: float) -> None:
        async def relay_and_scheduler() -> None:
            # Scheduled backups run beside the relay (hosts/live/scheduler.py), in the active
            # relay only: a standby must not run them a second time.
            async with asyncio.TaskGroup() as group:
                group.create_task(Relay(hosts_poll=hosts_poll).run(), name="relay")
                group.create_task(Scheduler().run(), name="backup-scheduler")

        loop = asyncio.get_running_loop()
        task = loop.create_task(lead(relay_and_scheduler, say=self._say), name="relay-leader")
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        self.stdout.write("relay running", ending="\n")
        self.stdout.flush()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
