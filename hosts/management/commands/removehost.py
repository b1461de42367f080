from django.core.management.base import BaseCommand, CommandError

from ...domain.registration import remove_host
from ...models import Host


class Command(BaseCommand):
    help = "Forget a registered host (optionally revoking the dashboard's certificate on it)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--revoke", action="store_true", help="remove our certificate from its trust store"
        )

    def handle(self, *args, name, revoke, **opts):
        host = Host.objects.filter(name=name).first()
        if host is None:
            raise CommandError(f"no host named {name!r}")
        warning = remove_host(host, revoke=revoke)
        if warning:
            self.stderr.write(warning)
        self.stdout.write(self.style.SUCCESS(f"Host {name} removed"))
