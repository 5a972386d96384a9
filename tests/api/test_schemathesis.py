"""Property-based fuzzing of the whole API from its own OpenAPI schema (schemathesis):
no 5xx, every response matches the schema (status codes, content types, bodies)."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gndp.asgi import application
from processes.services import start_process
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 12


@pytest.mark.parametrize("superuser", [False, True], ids=["member", "admin"])
def test_the_api_survives_schema_driven_fuzzing(small_version, superuser):
    user = UserFactory(username="fuzzer", roles=["role-clerk", "role-checker"])
    user.is_superuser = user.is_staff = superuser
    user.save()
    start_process(workflow_id="journey-small", user=user)  # something real to find by id
    token = Token.objects.create(user=user).key
    schema = schemathesis.openapi.from_asgi("/api/schema/", application)
    failures = []
    statuses = Counter()

    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            response = case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
            statuses[response.status_code] += 1

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report
            failures.append(f"{operation.label}: {exc}")

    assert not failures, "\n\n".join(failures)
    # The fuzzing reached the views, not only the front door.
    assert statuses[200] > 20 and sum(statuses.values()) > 150, statuses
