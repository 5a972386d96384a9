import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")
django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from gndp.addresses import check_trusted_proxies  # noqa: E402
from gndp.http import HTTPHandler  # noqa: E402
from gndp.routing import websocket_urlpatterns  # noqa: E402
from gndp.websocket import AuthMiddlewareStack, DatabaseGuard  # noqa: E402

check_trusted_proxies()  # a malformed GNDP_TRUSTED_PROXIES stops the server here, not at a request

application = ProtocolTypeRouter(
    {
        "http": HTTPHandler(),
        "websocket": DatabaseGuard(AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))),
    }
)

from anomalies import watchdog  # noqa: E402
from gndp.memory import freeze_startup  # noqa: E402

# System steps that no worker runs are noticed by the servers themselves (anomalies.watchdog).
watchdog.start()
freeze_startup()
