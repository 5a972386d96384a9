"""`GET /api/monitoring/anomalies` and `POST /api/monitoring/anomalies/{id}/acknowledge`."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from gndp.api.idempotency import idempotent
from gndp.api.validation import validated

from . import selectors, services
from .serializers import AcknowledgeSerializer, AnomalyQuerySerializer, AnomalySerializer

TAGS = ["monitoring"]


class AnomalyListView(GenericAPIView):
    serializer_class = AnomalySerializer

    @extend_schema(tags=TAGS, parameters=[AnomalyQuerySerializer], responses=AnomalySerializer(many=True),
                   description="Stuck processes, unusual paths and unusual step durations found by the periodic "
                               "detection, newest first; each says why and links to its process. `status` "
                               "defaults to open (neither acknowledged nor resolved). Managers see their team's, "
                               "administrators all. The total travels in `X-Total-Count`.")
    def get(self, request):
        query = validated(AnomalyQuerySerializer, request.query_params)
        found = selectors.anomalies(request.user, status=query["status"], kind=query.get("kind"),
                                    journey_id=query.get("journey_id"), process_id=query.get("process_id"))
        page = self.paginate_queryset(found)
        return self.get_paginated_response(AnomalySerializer(page, many=True).data)


class AcknowledgeView(APIView):
    @extend_schema(tags=TAGS, request=AcknowledgeSerializer, responses=AnomalySerializer,
                   parameters=[OpenApiParameter("anomaly_id", int, OpenApiParameter.PATH, description="An anomaly id.")])
    @idempotent
    def post(self, request, anomaly_id: str):
        note = validated(AcknowledgeSerializer, request.data)["note"]
        anomaly = services.anomaly_acknowledge(user=request.user, anomaly_id=anomaly_id, note=note)
        return Response(AnomalySerializer(anomaly).data)
