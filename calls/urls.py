"""Platform callbacks (included at ``/calls/`` by agentdesk/urls.py)."""

from django.urls import path

from calls import webhooks

app_name = "calls"

urlpatterns = [
    # Platforms that call back (``Provider.receives_callbacks``), one URL per ``callback_kinds``.
    path("hooks/<str:platform>/<str:secret>/<str:kind>", webhooks.platform_callback, name="callback"),
]
