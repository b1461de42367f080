from django.core.management.base import BaseCommand, CommandError

from ...domain.registration import ConfirmationNeeded, RegistrationError, register_host


class Command(BaseCommand):
    help = "Register an LXD host, as `lxc remote add` does (pin its certificate, get trusted)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="a short name for the host (letters, digits, hyphens)")
        parser.add_argument("url", help="https://host:port, host[:port], or a unix socket path")
        auth = parser.add_mutually_exclusive_group()
        auth.add_argument("--password", help="the host's trust password (LXD 5.x)")
        auth.add_argument("--token", help="a trust token from `lxc config trust add`")
        pin = parser.add_mutually_exclusive_group()
        pin.add_argument("--fingerprint", help="the sha256 fingerprint the server certificate must have")
        pin.add_argument(
            "--accept-certificate",
            action="store_true",
            help="trust whatever certificate the server presents (first use)",
        )

    def handle(self, *args, **opts):
        try:
            host = register_host(
                opts["name"],
                opts["url"],
                password=opts["password"],
                token=opts["token"],
                fingerprint=opts["fingerprint"],
                accept_certificate=opts["accept_certificate"],
            )
        except ConfirmationNeeded as exc:
            raise CommandError(
                f"Certificate fingerprint: {exc.fingerprint}\n"
                "Check it on the host, then run again with --fingerprint "
                f"{exc.fingerprint} (or --accept-certificate)."
            ) from exc
        except RegistrationError as exc:
            raise CommandError(str(exc)) from exc
        where = host.endpoint if host.is_unix else f"{host.endpoint} (certificate {host.server_fingerprint})"
        self.stdout.write(self.style.SUCCESS(f"Host {host.name} registered: {where}"))
