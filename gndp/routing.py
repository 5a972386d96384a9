from django.urls import path

from processes.consumers import InboxConsumer, MonitoringConsumer, ProcessConsumer

websocket_urlpatterns = [
    path("ws/inbox/", InboxConsumer.as_asgi()),
    path("ws/processes/<int:process_id>/", ProcessConsumer.as_asgi()),
    path("ws/monitoring/", MonitoringConsumer.as_asgi()),
]
