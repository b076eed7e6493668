from django.urls import path

from agentdesk import consumers

websocket_urlpatterns = [
    path("ws/desk/", consumers.DeskConsumer.as_asgi()),
    path("ws/supervisor/", consumers.SupervisorConsumer.as_asgi()),
]
