"""`manage.py relay`: the events relay as its own process.

Run it once per deployment when the channel layer is cross-process (REDIS_URL set, which
makes DASHBOARD_RELAY "external"): every web worker then shares one upstream events
connection per host.  SIGTERM or SIGINT stops it cleanly (host tasks cancelled and awaited,
the task log flushed).
"""

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

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
        relay = Relay(hosts_poll=hosts_poll)
        loop = asyncio.get_running_loop()
        task = loop.create_task(relay.run(), name="relay")
        # Scheduled backups run here too, beside the relay (hosts/live/scheduler.py).
        scheduler = loop.create_task(Scheduler().run(), name="backup-scheduler")

        def stop() -> None:
            task.cancel()
            scheduler.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        self.stdout.write("relay running", ending="\n")
        self.stdout.flush()
        await asyncio.gather(task, scheduler, return_exceptions=True)
