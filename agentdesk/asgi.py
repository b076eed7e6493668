"""ASGI entry point: HTTP through Django, WebSockets through Channels (``agentdesk/routing.py``)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentdesk.settings")
# Read by the settings: a web process closes its database connection after each request.
os.environ["AGENTDESK_ASGI"] = "1"
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from agentdesk.logredact import redact_daphne_access_log  # noqa: E402
from agentdesk.routing import websocket_urlpatterns  # noqa: E402

# daphne writes its access log itself, path and query included: never a webhook secret.
redact_daphne_access_log()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
