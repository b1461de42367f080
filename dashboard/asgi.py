import os

import django
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")


class DashboardASGIHandler(ASGIHandler):
    # Django cuts every body part into 64 KiB messages; a streamed download (a file, a backup
    # export: 4 MiB parts, hosts/views/streaming.py) then cost 64 trips through the middleware
    # and daphne per part.  Measured on a backup export: daphne's CPU per byte halved.
    chunk_size = 4 * 1024 * 1024


django.setup(set_prefix=False)
django_asgi_app = DashboardASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from dashboard import body_limit, startup  # noqa: E402
from dashboard.backpressure import StreamBackpressure  # noqa: E402
from dashboard.origin import SameOriginWebsockets  # noqa: E402
from hosts.live.wire import KeepServerSend  # noqa: E402
from hosts.routing import websocket_urlpatterns  # noqa: E402

# The embedded default serves /static/ itself, so `daphne dashboard.asgi:application` is all
# it takes; behind a reverse proxy that serves STATIC_ROOT, set DASHBOARD_SERVE_STATIC=0.
http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.DASHBOARD_SERVE_STATIC else django_asgi_app
# Streamed responses (file downloads) go no faster than the client reads: see backpressure.py.
http_app = StreamBackpressure(http_app)

# Request bodies over the limit are refused by daphne itself, before they are read.
body_limit.install()
# The relay and the backup scheduler start with the server, not with the first browser.
startup.install()

application = ProtocolTypeRouter(
    {
        "http": http_app,
        # Only our own pages may open a websocket (scheme, host and port): see origin.py.
        # Live pushes are written to daphne's connections directly: see hosts/live/wire.py.
        "websocket": KeepServerSend(
            SameOriginWebsockets(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
