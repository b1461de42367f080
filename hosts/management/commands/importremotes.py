import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ...domain.remotes import CLIConfig, RemotesError, import_remotes, parse_token_options

# Where the tools keep their configuration, in the order they look ($LXD_CONF / $INCUS_CONF first).
CANDIDATES = (
    ("LXD_CONF", "~/.config/lxc"),
    ("LXD_CONF", "~/snap/lxd/common/config"),
    ("INCUS_CONF", "~/.config/incus"),
)


def default_directory() -> Path | None:
    for variable, fallback in CANDIDATES:
        for path in (os.environ.get(variable), fallback):
            if path and (Path(path).expanduser() / "config.yml").is_file():
                return Path(path).expanduser()
    return None


class Command(BaseCommand):
    help = (
        "Register the remotes of the lxc or incus command line tool as hosts: HTTPS remotes pinned "
        "to the certificate the tool pinned, trusted with the tool's own client certificate where the "
        "server trusts it (else with --token), and the unix socket remote `local`. Image servers are "
        "skipped. The tool's files are only read."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from",
            dest="source",
            help="the tool's configuration directory (default: $LXD_CONF, ~/.config/lxc, the snap's, "
            "$INCUS_CONF or ~/.config/incus: the first that has a config.yml)",
        )
        parser.add_argument("--names", help="only these remotes, comma-separated")
        parser.add_argument(
            "--token",
            action="append",
            default=[],
            metavar="REMOTE=TOKEN",
            help="a trust token for a remote that does not trust the tool's certificate (repeatable)",
        )

    def handle(self, *args, **opts):
        source = Path(opts["source"]).expanduser() if opts["source"] else default_directory()
        if source is None:
            raise CommandError("No lxc or incus configuration found: give its directory with --from.")
        names = [n.strip() for n in (opts["names"] or "").split(",") if n.strip()] or None
        try:
            tokens = parse_token_options(opts["token"])
            outcomes = import_remotes(
                CLIConfig.from_directory(source),
                names=names,
                tokens=tokens,
                actor="manage.py importremotes",
            )
        except RemotesError as exc:
            raise CommandError(str(exc)) from exc
        for outcome in outcomes:
            style = self.style.SUCCESS if outcome.imported else self.style.WARNING
            self.stdout.write(style(outcome.line))
        imported = sum(o.imported for o in outcomes)
        self.stdout.write(f"{imported} of {len(outcomes)} remotes imported from {source}.")
