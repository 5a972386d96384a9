"""REST endpoints for tasks. Views parse, call a service, serialize."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from gndp.api.idempotency import idempotent
from processes.errors import InvalidInput

from . import selectors, services
from .models import TaskStatus
from .serializers import CancelSerializer, CompleteSerializer, ReassignSerializer, StatsSerializer, TaskSerializer

USER_PARAM = OpenApiParameter("user_id", str, description="A user name; defaults to the caller.")
STATUS_PARAM = OpenApiParameter("status", str, enum=[s.value for s in TaskStatus],
                                description="Defaults to the open ones (pending and in_progress).")


class TaskViewSet(viewsets.GenericViewSet):
    serializer_class = TaskSerializer

    def get_queryset(self):
        return selectors.visible_tasks(self.request.user)

    def retrieve(self, request, pk=None):
        return Response(TaskSerializer(selectors.task_for(request.user, pk)).data)

    @extend_schema(parameters=[USER_PARAM, STATUS_PARAM], responses=TaskSerializer(many=True))
    @action(detail=False, methods=["get"])
    def inbox(self, request):
        status = request.query_params.get("status") or None
        if status and status not in TaskStatus.values:
            raise InvalidInput("unknown status", details={"status": f"one of {', '.join(TaskStatus.values)}"})
        tasks = selectors.inbox_page_source(request.user, username=request.query_params.get("user_id"), status=status)
        page = self.paginate_queryset(tasks)
        return self.get_paginated_response(TaskSerializer(page, many=True).data)

    @extend_schema(parameters=[USER_PARAM], responses=StatsSerializer)
    @action(detail=False, methods=["get"])
    def stats(self, request):
        return Response(selectors.stats(request.user, username=request.query_params.get("user_id")))

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def start(self, request, pk=None):
        return self._respond(services.start_task(pk, user=request.user))

    @extend_schema(request=CompleteSerializer, responses=TaskSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def complete(self, request, pk=None):
        serializer = CompleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = services.complete_task(pk, user=request.user, result=serializer.validated_data["result"])
        return self._respond(task)

    @extend_schema(request=ReassignSerializer, responses=TaskSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def reassign(self, request, pk=None):
        serializer = ReassignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = services.reassign_task(pk, user=request.user, new_assignee=serializer.validated_data["new_assignee"])
        return self._respond(task)

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def escalate(self, request, pk=None):
        return self._respond(services.escalate_task(pk, user=request.user))

    @extend_schema(request=CancelSerializer, responses=TaskSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._respond(services.cancel_task(pk, user=request.user, reason=serializer.validated_data["reason"]))

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def retry(self, request, pk=None):
        return self._respond(services.retry_task(pk, user=request.user))

    def _respond(self, task):
        # The service returns the task as it left it, with its process and assignee loaded.
        return Response(TaskSerializer(task).data)
