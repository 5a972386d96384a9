"""REST endpoints of the caller's own notifications and preferences."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from gndp.api.idempotency import idempotent
from gndp.api.validation import validated

from . import selectors, services
from .serializers import (
    MarkedSerializer,
    NotificationSerializer,
    PreferencesSerializer,
    PreferencesUpdateSerializer,
    UnreadCountSerializer,
    UnreadQuerySerializer,
)

TAGS = ["notifications"]
ID_PARAM = OpenApiParameter("notification_id", int, OpenApiParameter.PATH, description="A notification id.")


class NotificationListView(GenericAPIView):
    serializer_class = NotificationSerializer

    @extend_schema(tags=TAGS, parameters=[UnreadQuerySerializer], responses=NotificationSerializer(many=True),
                   description="The caller's in-app notifications, newest first. The total travels in "
                               "`X-Total-Count`.")
    def get(self, request):
        query = validated(UnreadQuerySerializer, request.query_params)
        page = self.paginate_queryset(selectors.notifications_for(request.user, unread_only=query["unread"]))
        return self.get_paginated_response(NotificationSerializer(page, many=True).data)


class UnreadCountView(APIView):
    @extend_schema(tags=TAGS, responses=UnreadCountSerializer, description="What the bell shows.")
    def get(self, request):
        return Response({"unread": selectors.unread_count(request.user)})


class MarkReadView(APIView):
    @extend_schema(tags=TAGS, parameters=[ID_PARAM], request=None, responses=NotificationSerializer)
    @idempotent
    def post(self, request, notification_id: str):
        notification = services.notification_mark_read(user=request.user, notification_id=notification_id)
        return Response(NotificationSerializer(notification).data)


class MarkAllReadView(APIView):
    @extend_schema(tags=TAGS, request=None, responses=MarkedSerializer)
    @idempotent
    def post(self, request):
        return Response({"marked": services.notifications_mark_all_read(user=request.user)})


class PreferencesView(APIView):
    @extend_schema(tags=TAGS, responses=PreferencesSerializer)
    def get(self, request):
        return Response(PreferencesSerializer(selectors.preferences_for(request.user)).data)

    @extend_schema(tags=TAGS, request=PreferencesUpdateSerializer, responses=PreferencesSerializer,
                   description="Change the channels of some kinds (an empty list turns a kind off), the quiet "
                               "hours (both ends, or both null to have none) or the time zone.")
    @idempotent
    def patch(self, request):
        data = validated(PreferencesUpdateSerializer, request.data)
        preference = services.preferences_update(
            user=request.user, channels=data.get("channels"),
            quiet_start=data.get("quiet_start", ""), quiet_end=data.get("quiet_end", ""),
            timezone_name=data.get("timezone"),
        )
        return Response(PreferencesSerializer(preference).data)
