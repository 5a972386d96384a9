"""The graph analytics of the monitoring API (processes/graph/analytics.py), under
/api/monitoring/ (processes/graph_urls.py):

    GET graph-hotspots?limit=            atoms with the most running processes waiting now
    GET travelled-paths?since=&until=&limit=   the most travelled step pairs in a window

Scoped as the dashboard is (`monitoring.selectors.scope_for`): superusers and holders of
`view_all_processes` count every process, a manager its team's; anyone else is refused (403).
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from gndp.api.validation import validated
from monitoring.selectors import scope_for

from .graph import analytics
from .models import ProcessInstance

TAGS = ["monitoring"]
DEFAULT_WINDOW = timedelta(days=7)
MAX_WINDOW = timedelta(days=366)
MAX_LIMIT = 200


def processes_counted_for(user) -> QuerySet[ProcessInstance] | None:
    """The processes this user's analytics count: None for all of them; Forbidden for
    anyone the dashboard refuses."""
    scope = scope_for(user)
    return None if scope.everything else scope.processes()


# --- queries -------------------------------------------------------------------------------------

class GraphHotspotsQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, default=analytics.DEFAULT_LIMIT, min_value=1,
                                     max_value=MAX_LIMIT)


class TravelledPathsQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False, help_text="Start of the window (included). "
                                      "Default: 7 days before `until`.")
    until = serializers.DateTimeField(required=False, help_text="End of the window (excluded). Default: now.")
    limit = serializers.IntegerField(required=False, default=analytics.DEFAULT_LIMIT, min_value=1,
                                     max_value=MAX_LIMIT)

    def validate(self, attrs):
        until = attrs.get("until") or timezone.now()
        since = attrs.get("since") or until - DEFAULT_WINDOW
        if since >= until:
            raise serializers.ValidationError({"since": "must be before until"})
        if until - since > MAX_WINDOW:
            raise serializers.ValidationError({"since": "the window may span at most 366 days"})
        return {**attrs, "since": since, "until": until}


# --- responses (documentation) ------------------------------------------------------------------

def _computed_in() -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=[analytics.CYPHER, analytics.SQL],
        help_text="cypher: over the runtime mirror in Neo4j; sql: over the database (no Neo4j configured, "
                  "or Neo4j unreachable).",
    )


class HotspotSerializer(serializers.Serializer):
    journey_id = serializers.CharField()
    atom_id = serializers.CharField()
    atom_name = serializers.CharField(allow_null=True, help_text="as in the journey's latest version")
    processes = serializers.IntegerField(help_text="running processes waiting on this atom now")


class GraphHotspotsSerializer(serializers.Serializer):
    computed_in = _computed_in()
    atoms = HotspotSerializer(many=True)


class TravelledPathSerializer(serializers.Serializer):
    journey_id = serializers.CharField()
    source = serializers.CharField(help_text="the atom completed first")
    target = serializers.CharField(help_text="the atom completed next, in the window")
    source_name = serializers.CharField(allow_null=True)
    target_name = serializers.CharField(allow_null=True)
    travelled = serializers.IntegerField(help_text="how many times processes went from source to target")


class TravelledPathsSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    computed_in = _computed_in()
    paths = TravelledPathSerializer(many=True)


# --- views ---------------------------------------------------------------------------------------

class GraphHotspotsView(APIView):
    @extend_schema(tags=TAGS, parameters=[GraphHotspotsQuerySerializer], responses=GraphHotspotsSerializer,
                   description="Atoms by the number of running processes waiting on them now (the step is "
                               "active: its task is open), most first. Counts every process for an administrator, "
                               "the team's for a manager; anyone else 403.")
    def get(self, request):
        processes = processes_counted_for(request.user)
        query = validated(GraphHotspotsQuerySerializer, request.query_params, "invalid query parameters")
        analysis = analytics.waiting_hotspots(query["limit"], processes=processes)
        return Response({"computed_in": analysis.computed_in, "atoms": analysis.rows})


class TravelledPathsView(APIView):
    @extend_schema(tags=TAGS, parameters=[TravelledPathsQuerySerializer], responses=TravelledPathsSerializer,
                   description="Consecutive step pairs by how often processes travelled them in the window "
                               "[since, until): the target completed in the window right after the source, in "
                               "the same process. Counts every process for an administrator, the team's for a "
                               "manager; anyone else 403.")
    def get(self, request):
        processes = processes_counted_for(request.user)
        query = validated(TravelledPathsQuerySerializer, request.query_params, "invalid query parameters")
        analysis = analytics.travelled_paths(query["since"], query["until"], query["limit"], processes=processes)
        return Response({"since": query["since"], "until": query["until"],
                         "computed_in": analysis.computed_in, "paths": analysis.rows})
