"""REST endpoints for journeys and processes. Views parse, call a service, serialize."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from gndp.api.idempotency import idempotent
from gndp.api.parsers import BulkStartJSONParser, JourneyJSONParser

from . import selectors, services
from .errors import Forbidden
from .models import ProcessInstance, ProcessStatus
from .serializers import (
    AbortSerializer,
    EventSerializer,
    JourneyImportResultSerializer,
    JourneySummarySerializer,
    ProcessSerializer,
    StartedManySerializer,
    StartManySerializer,
    StartProcessSerializer,
    VisualizeSerializer,
)
from .versions import publish_journey

ID_PATTERN = r"[a-z0-9][a-z0-9._-]{0,99}"


class JourneyViewSet(viewsets.ViewSet):
    lookup_value_regex = ID_PATTERN
    lookup_field = "journey_id"

    @extend_schema(responses=JourneySummarySerializer(many=True))
    def list(self, request):
        return Response(selectors.journey_summaries(request.user))

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def retrieve(self, request, journey_id=None):
        return Response(selectors.journey_detail(journey_id, request.user))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: JourneyImportResultSerializer, 201: JourneyImportResultSerializer})
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[JourneyJSONParser])
    @idempotent
    def import_journey(self, request):
        if not (request.user.is_superuser or request.user.has_perm("processes.add_workflowversion")):
            raise Forbidden("only journey administrators may import journeys")
        published = publish_journey(request.data)
        version = published.version
        body = {"id": version.journey_id, "version": version.number, "hash": version.hash,
                "created": published.created}
        return Response(body, status=201 if published.created else 200)


class ProcessFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ProcessStatus.choices)
    journey_id = filters.CharFilter(method="filter_journey", help_text="A journey, phase or module id.")

    class Meta:
        model = ProcessInstance
        fields = ["status", "journey_id"]

    def filter_journey(self, queryset, name, value):
        from django.db.models import Q

        return queryset.filter(Q(workflow_id=value) | Q(journey_id=value))


def _may_steer(user, process: ProcessInstance) -> bool:
    if user.is_superuser or (user.is_staff and user.has_perm("processes.change_processinstance")):
        return True
    if process.started_by_id == user.pk:
        return True
    starter_profile = getattr(process.started_by, "workflow_profile", None) if process.started_by_id else None
    return bool(starter_profile and starter_profile.manager_id == user.pk)


class ProcessViewSet(viewsets.GenericViewSet):
    serializer_class = ProcessSerializer
    filterset_class = ProcessFilter
    filter_backends = [filters.DjangoFilterBackend]

    def get_queryset(self):
        return selectors.processes_for(self.request.user).order_by("-started_at", "-pk")

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ProcessSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(ProcessSerializer(selectors.process_for(request.user, pk)).data)

    @extend_schema(request=StartProcessSerializer, responses={201: ProcessSerializer})
    @action(detail=False, methods=["post"])
    @idempotent
    def start(self, request):
        data = _valid(StartProcessSerializer, request)
        process = services.start_process(
            workflow_id=data["journey_id"], context=data["context"], user=request.user,
            business_key=data.get("business_key"),
        )
        # The starter always sees what it started: no read through the visibility selector.
        return Response(ProcessSerializer(process).data, status=201)

    @extend_schema(request=StartManySerializer, responses={201: StartedManySerializer})
    @action(detail=False, methods=["post"], url_path="start-bulk", parser_classes=[BulkStartJSONParser])
    @idempotent
    def start_bulk(self, request):
        data = _valid(StartManySerializer, request)
        started = services.start_processes(
            workflow_id=data["journey_id"], contexts=data["contexts"], user=request.user,
            business_keys=data.get("business_keys"),
        )
        return Response({"started": len(started), "ids": [process.pk for process in started]}, status=201)

    @extend_schema(request=None, responses=ProcessSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def suspend(self, request, pk=None):
        return self._steer(request, pk, services.suspend_process)

    @extend_schema(request=None, responses=ProcessSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def resume(self, request, pk=None):
        return self._steer(request, pk, services.resume_process)

    @extend_schema(request=AbortSerializer, responses=ProcessSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def abort(self, request, pk=None):
        reason = _valid(AbortSerializer, request)["reason"]
        return self._steer(request, pk, lambda pid, user: services.abort_process(pid, user=user, reason=reason))

    def _steer(self, request, pk, service):
        process = selectors.process_for(request.user, pk)
        if not _may_steer(request.user, process):
            raise Forbidden("only the initiator, its manager or an administrator may do this")
        service(process.pk, user=request.user)
        return Response(ProcessSerializer(selectors.process_for(request.user, pk)).data)

    @extend_schema(responses=EventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        process = selectors.process_for(request.user, pk)
        return Response(EventSerializer(process.events.order_by("id"), many=True).data)

    @extend_schema(responses=VisualizeSerializer)
    @action(detail=True, methods=["get"])
    def visualize(self, request, pk=None):
        return Response(selectors.graph_of(selectors.process_for(request.user, pk)))


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data

