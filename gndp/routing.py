from django.urls import path

from collaboration.consumers import TaskConsumer
from monitoring.consumers import MonitoringConsumer
from processes.consumers import InboxConsumer, ProcessConsumer

websocket_urlpatterns = [
    path("ws/inbox/", InboxConsumer.as_asgi()),
    path("ws/processes/<int:process_id>/", ProcessConsumer.as_asgi()),
    path("ws/monitoring/", MonitoringConsumer.as_asgi()),
    path("ws/tasks/<int:task_id>/", TaskConsumer.as_asgi()),
]
