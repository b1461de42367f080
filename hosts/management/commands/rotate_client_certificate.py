from django.core.management.base import BaseCommand, CommandError

from ...domain.cert_rotation import rotate_client_certificate


class Command(BaseCommand):
    help = (
        "Make a new client certificate and move every HTTPS host to it: trust it on the host, "
        "check it, switch, then remove the old one.  A host that fails keeps the old certificate."
    )

    def handle(self, *args, **opts):
        rotation = rotate_client_certificate()
        new = rotation.new_fingerprint
        for done in rotation.hosts:
            if done.switched:
                line = f"{done.host}: now uses {new}"
                line += f"; {done.old_left}" if done.old_left else "; old certificate removed"
                self.stdout.write(line)
            else:
                self.stdout.write(f"{done.host}: FAILED, keeps {done.old_fingerprint}: {done.error}")
        for fingerprint in rotation.deleted:
            self.stdout.write(f"Old certificate {fingerprint} deleted (no host uses it).")
        for fingerprint in rotation.kept:
            self.stdout.write(f"Old certificate {fingerprint} kept: a host still uses it.")
        if rotation.failed:
            names = ", ".join(h.host for h in rotation.failed)
            raise CommandError(f"{len(rotation.failed)} host(s) keep the old certificate: {names}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Every host uses the new client certificate {new} ({len(rotation.hosts)} host(s))."
            )
        )
