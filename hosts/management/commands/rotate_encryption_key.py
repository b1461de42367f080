from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ...domain import crypto
from ...models import ClientCertificate


class Command(BaseCommand):
    help = (
        "Re-encrypt every client private key with the first key of DASHBOARD_ENCRYPTION_KEYS. "
        "Rotation: put the new key first (NEW,OLD), run this, then drop OLD."
    )

    def handle(self, *args, **opts):
        if len(settings.DASHBOARD_ENCRYPTION_KEYS) < 1:
            raise CommandError("DASHBOARD_ENCRYPTION_KEYS is empty")
        count = 0
        with transaction.atomic():
            for cert in ClientCertificate.objects.select_for_update():
                try:
                    cert.private_key_encrypted = crypto.rotate(cert.private_key_encrypted)
                except Exception as exc:
                    raise CommandError(
                        f"cannot decrypt the key of {cert.name}: none of the keys fits"
                    ) from exc
                cert.save(update_fields=["private_key_encrypted"])
                count += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} private key(s) with the first key."))
