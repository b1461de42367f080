import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from ...domain.registration import RegistrationError, find_local_socket, register_host
from ...models import Host


class Command(BaseCommand):
    help = (
        "First-run setup: an admin account (password printed once) and the local LXD socket as host 'local'."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-local", action="store_true", help="do not look for a local LXD socket")

    def handle(self, *args, **opts):
        User = get_user_model()
        if not User.objects.exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "", password)
            self.stdout.write(
                self.style.SUCCESS(
                    "Created the first account. Log in once with\n"
                    f"    user: admin\n    password: {password}\n"
                    "and change the password (it is not shown again; `manage.py changepassword admin` resets it)."
                )
            )
        if opts["no_local"] or Host.objects.filter(name="local").exists():
            return
        socket_path = find_local_socket()
        if socket_path is None:
            self.stdout.write(
                "No local LXD socket found; register hosts from the dashboard or with `manage.py addhost`."
            )
            return
        try:
            register_host("local", socket_path)
        except RegistrationError as exc:
            self.stdout.write(self.style.WARNING(f"Found {socket_path} but could not register it: {exc}"))
        else:
            self.stdout.write(
                self.style.SUCCESS(f"Registered the local LXD socket {socket_path} as host 'local'.")
            )
