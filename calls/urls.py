"""Platform callbacks (included at ``/calls/`` by agentdesk/urls.py)."""

from django.urls import path

from calls import webhooks

app_name = "calls"

urlpatterns = [
    path("hooks/ryng/<str:secret>/<str:kind>", webhooks.ryng_callback, name="ryng-callback"),
]
