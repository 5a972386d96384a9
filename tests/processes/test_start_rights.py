"""Who may start what (processes.start_rights): a journey's `start` rule, enforced by the
service every start path calls (the API, single and bulk, the start page, the command),
and nothing in the admin that starts a process past it.

Each refusal is a 403 with the contract's error body and starts nothing; a phase or module
id that no journey has stays a 404."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from processes import services
from processes.errors import NotFound
from processes.models import ProcessEvent, ProcessInstance
from processes.start_rights import PartNotStartable, StartNotAllowed
from processes.versions import publish_journey
from tasks.models import TaskInstance
from tests.factories import START_ANY_JOURNEY, UserFactory
from tests.fixtures import SMALL_JOURNEY

pytestmark = pytest.mark.django_db


def publish(start: dict | None = None):
    """journey-small (roles clerk and checker; phases phase-intake, phase-review with one
    module each), with this `journey.start`."""
    data = yaml.safe_load(SMALL_JOURNEY)
    if start is not None:
        data["journey"]["start"] = start
    return publish_journey(data).version


@pytest.fixture
def people(db):
    inactive_admin = UserFactory(username="gone", is_superuser=True, is_staff=True, is_active=False)
    inactive_clerk = UserFactory(username="left", roles=["role-clerk"], is_active=False)
    return SimpleNamespace(
        clerk=UserFactory(username="clara", roles=["role-clerk"]),
        checker=UserFactory(username="chet", roles=["role-checker"]),
        borrower=UserFactory(username="bob", roles=["role-borrower"]),  # a role, but not one of this journey
        nobody=UserFactory(username="nora"),
        starter=UserFactory(username="sam", permissions=[START_ANY_JOURNEY]),
        admin=UserFactory(username="root", is_superuser=True, is_staff=True),
        inactive_admin=inactive_admin,
        inactive_clerk=inactive_clerk,
    )


def started_nothing() -> bool:
    return not (ProcessInstance.objects.exists() or ProcessEvent.objects.exists() or TaskInstance.objects.exists())


def refused(user, workflow_id: str, **kwargs) -> str:
    """The code of the service's refusal; asserts that it started nothing."""
    with pytest.raises((StartNotAllowed, PartNotStartable)) as refusal:
        services.start_process(workflow_id=workflow_id, user=user, **kwargs)
    assert refusal.value.status == 403
    assert refusal.value.details == {"journey_id": "journey-small", "workflow_id": workflow_id}
    assert started_nothing()
    return refusal.value.code


def starts(user, workflow_id: str) -> ProcessInstance:
    process = services.start_process(workflow_id=workflow_id, user=user)
    assert process.workflow_id == workflow_id and process.started_by == user
    return process


# --- the rule, at the service every path calls ---------------------------------------------------

def test_by_default_the_roles_that_perform_its_atoms_start_a_journey(people):
    publish()

    assert refused(people.nobody, "journey-small") == "start_not_allowed"
    assert refused(people.borrower, "journey-small") == "start_not_allowed"
    assert refused(people.inactive_clerk, "journey-small") == "start_not_allowed"
    starts(people.clerk, "journey-small")
    starts(people.checker, "journey-small")


def test_a_phase_or_module_starts_on_its_own_only_when_the_journey_lists_it(people):
    publish()
    assert refused(people.clerk, "phase-review") == "part_not_startable"  # default: no part alone

    publish({"parts": ["phase-review"]})

    assert refused(people.clerk, "module-review") == "part_not_startable"  # its module is a part of its own
    assert refused(people.clerk, "phase-intake") == "part_not_startable"
    assert refused(people.nobody, "phase-review") == "start_not_allowed"  # listed, but not for everyone
    starts(people.clerk, "phase-review")


def test_by_everyone_any_active_user_starts_it_and_parts_still_need_listing(people):
    publish({"by": "everyone", "parts": ["module-intake"]})

    assert refused(people.nobody, "phase-review") == "part_not_startable"
    assert refused(people.inactive_clerk, "journey-small") == "start_not_allowed"
    starts(people.nobody, "journey-small")
    starts(people.borrower, "module-intake")


def test_an_empty_by_leaves_the_journey_to_administrators(people):
    publish({"by": []})

    assert refused(people.clerk, "journey-small") == "start_not_allowed"
    starts(people.starter, "journey-small")
    starts(people.admin, "journey-small")


def test_the_permission_and_superusers_start_any_journey_and_any_part(people):
    publish({"by": ["role-checker"]})
    group = Group.objects.create(name="operators")
    group.permissions.add(Permission.objects.get(codename="start_any_journey"))
    operator = UserFactory(username="opal", roles=["operators"])  # the permission through a group

    assert refused(people.inactive_admin, "journey-small") == "start_not_allowed"
    assert refused(people.inactive_admin, "module-review") == "part_not_startable"
    for user in (people.starter, people.admin, operator):
        for workflow_id in ("journey-small", "phase-review", "module-intake"):
            starts(user, workflow_id)


def test_an_id_that_no_journey_has_stays_a_404_for_everyone(people):
    publish()

    for user in (people.nobody, people.admin):
        with pytest.raises(NotFound) as unknown:
            services.start_process(workflow_id="phase-nowhere", user=user)
        assert unknown.value.code == "unknown_workflow"
    assert started_nothing()


def test_the_engine_itself_starts_without_a_person(people):
    publish()

    process = services.start_process(workflow_id="phase-review", user=None)

    assert process.started_by is None


def test_a_refusal_comes_before_anything_the_input_would_reveal(people):
    publish()
    services.start_process(workflow_id="journey-small", user=people.clerk, business_key="K-1")

    # a bad context, and a business key held by an open process: 403, not 400 or 409
    with pytest.raises(StartNotAllowed):
        services.start_process(workflow_id="journey-small", user=people.nobody, context=["not", "an", "object"])
    for kwargs in ({"business_keys": ["K-1"]}, {"business_keys": ["K-2", "K-2", "K-3"]}):
        with pytest.raises(StartNotAllowed):
            services.start_processes(workflow_id="journey-small", user=people.nobody,
                                     contexts=[{}] * len(kwargs["business_keys"]), **kwargs)
    with pytest.raises(PartNotStartable):
        services.start_processes(workflow_id="phase-review", user=people.clerk, contexts=[{}, "x"])

    assert ProcessInstance.objects.count() == 1


# --- the REST API ----------------------------------------------------------------------------------

def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.mark.parametrize("path", ["/api/processes/start", "/api/processes/start-bulk"])
def test_the_api_refuses_with_the_contracts_error_body_and_starts_nothing(people, path):
    publish()

    def post(user, workflow_id):
        body = {"journey_id": workflow_id}
        if path.endswith("bulk"):
            body["contexts"] = [{}, {}]
        return api_for(user).post(path, body, format="json")

    stranger = post(people.nobody, "journey-small")
    part = post(people.clerk, "phase-review")
    unknown = post(people.clerk, "phase-nowhere")

    assert stranger.status_code == 403
    assert stranger.json()["error"]["code"] == "start_not_allowed"
    assert stranger.json()["error"]["details"] == {"journey_id": "journey-small", "workflow_id": "journey-small"}
    assert "role-checker, role-clerk" in stranger.json()["error"]["message"]
    assert part.status_code == 403 and part.json()["error"]["code"] == "part_not_startable"
    assert set(part.json()["error"]) == {"code", "message", "details"}
    assert unknown.status_code == 404
    assert started_nothing()

    assert post(people.clerk, "journey-small").status_code == 201
    assert post(people.starter, "module-review").status_code == 201
    assert set(ProcessInstance.objects.values_list("started_by__username", flat=True)) == {"clara", "sam"}


def test_the_journeys_api_says_what_the_caller_may_start(people):
    publish({"by": ["role-clerk"], "parts": ["phase-review"]})

    def listed(user):
        return api_for(user).get("/api/journeys").json()[0]

    detail = api_for(people.nobody).get("/api/journeys/journey-small").json()

    assert (listed(people.clerk)["may_start"], listed(people.clerk)["startable"]) == \
        (True, ["journey-small", "phase-review"])
    assert (listed(people.checker)["may_start"], listed(people.checker)["startable"]) == (False, [])
    assert listed(people.starter)["startable"] == [
        "journey-small", "phase-intake", "module-intake", "phase-review", "module-review"]
    # the definition is not hidden from who may not start it; it says who may
    assert detail["start"] == {"by": ["role-clerk"], "parts": ["phase-review"], "by_default": False}
    assert (detail["may_start"], detail["startable"]) == (False, [])
    assert len(detail["atoms"]) == 8


def test_the_journeys_api_resolves_the_default_rule(people):
    publish()

    detail = api_for(people.checker).get("/api/journeys/journey-small").json()

    assert detail["start"] == {"by": ["role-clerk", "role-checker"], "parts": [], "by_default": True}
    assert (detail["may_start"], detail["startable"]) == (True, ["journey-small"])


# --- the start page ----------------------------------------------------------------------------------

def page_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def offered(response) -> list[str]:
    import re

    return re.findall(r'<option value="([^"]+)"', response.content.decode())


def test_the_start_page_offers_only_what_the_user_may_start(people):
    publish({"parts": ["module-review"]})

    nothing = page_for(people.nobody).get("/processes/start/")

    assert nothing.status_code == 200
    assert offered(nothing) == [] and "data-nothing-startable" in nothing.content.decode()
    assert offered(page_for(people.clerk).get("/processes/start/")) == ["journey-small", "module-review"]
    assert offered(page_for(people.admin).get("/processes/start/")) == [
        "journey-small", "phase-intake", "module-intake", "phase-review", "module-review"]


def test_the_journey_page_says_who_starts_it_and_what_the_user_may(people):
    publish({"by": ["role-checker"], "parts": ["phase-review"]})

    clerk = page_for(people.clerk).get("/journeys/journey-small/").content.decode()
    checker = page_for(people.checker).get("/journeys/journey-small/").content.decode()

    assert "Started by role-checker; on their own also phase-review." in clerk
    assert "You may start" not in clerk
    assert "You may start journey-small, phase-review" in checker


def test_a_start_posted_past_the_page_is_refused_with_a_403_page(people):
    publish()

    stranger = page_for(people.nobody).post("/processes/start/", {"workflow_id": "journey-small", "context": "{}"})
    part = page_for(people.clerk).post("/processes/start/", {"workflow_id": "phase-review", "context": "{}"})

    assert stranger.status_code == 403 and "you may not start journey-small" in stranger.content.decode()
    assert part.status_code == 403 and "not started on its own" in part.content.decode()
    assert started_nothing()
    allowed = page_for(people.clerk).post("/processes/start/", {"workflow_id": "journey-small", "context": "{}"})
    assert allowed.status_code == 302 and ProcessInstance.objects.get().started_by == people.clerk


# --- the command ----------------------------------------------------------------------------------

def run_command(*args) -> tuple[int, str, str]:
    import io

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("start_processes", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_the_command_checks_user_like_the_api_or_says_it_is_the_operator(people):
    publish()

    refusals = [
        run_command("journey-small", "--count", "3", "--user", "nora"),  # in no role of the journey
        run_command("journey-small", "--count", "3", "--user", "left"),  # a clerk no longer active
        run_command("phase-review", "--count", "2", "--user", "clara"),  # a part the journey does not list
        run_command("journey-small", "--count", "2"),  # on nobody's authority
        run_command("journey-small", "--count", "2", "--user", "clara", "--operator"),
    ]

    assert [code for code, _, _ in refusals] == [1, 1, 1, 1, 1]
    assert [err.strip() for _, _, err in refusals] == [
        "you may not start journey-small: members of role-checker, role-clerk may",
        "you may not start journey-small: members of role-checker, role-clerk may",
        "phase-review is a phase of journey-small that is not started on its own "
        "(the journey's start.parts does not list it)",
        "give either --user NAME (started by that user, if it may) or --operator",
        "give either --user NAME (started by that user, if it may) or --operator",
    ]
    assert started_nothing()

    as_clerk = run_command("journey-small", "--count", "2", "--user", "clara")
    as_operator = run_command("phase-review", "--count", "1", "--operator")

    assert as_clerk[0] == 0 and "started 2 processes of journey-small as clara" in as_clerk[1]
    assert as_operator[0] == 0 and "started 1 processes of phase-review as the operator" in as_operator[1]
    assert sorted(ProcessInstance.objects.values_list("workflow_id", "started_by__username")) == [
        ("journey-small", "clara"), ("journey-small", "clara"), ("phase-review", None)]


# --- the admin ------------------------------------------------------------------------------------

def test_no_admin_path_starts_a_process(people):
    publish()
    staff = UserFactory(username="stella", is_staff=True, permissions=[
        "processes.add_processinstance", "processes.change_processinstance", "processes.view_processinstance"])

    for user in (people.admin, staff):
        client = page_for(user)
        add_page = client.get("/admin/processes/processinstance/add/")
        add_post = client.post("/admin/processes/processinstance/add/", {
            "version": publish().pk, "journey_id": "journey-small", "workflow_id": "phase-review",
            "status": "running", "context": "{}", "atom_states": "{}", "fired_edges": "{}"})
        assert (add_page.status_code, add_post.status_code) == (403, 403)
    from django.contrib import admin

    from processes.models import ProcessInstance as Model

    actions = admin.site._registry[Model].get_actions(_request_for(people.admin))
    assert set(actions) == {"suspend", "resume", "abort"}
    assert started_nothing()


def test_the_permission_is_grantable_in_the_admin(people):
    page = page_for(people.admin).get(f"/admin/auth/user/{people.nobody.pk}/change/")

    assert page.status_code == 200
    assert "Can start any journey, phase or module" in page.content.decode()


def _request_for(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/processes/processinstance/")
    request.user = user
    return request


# --- the demo journey: the finding itself -----------------------------------------------------------

def test_in_the_demo_loan_officers_start_loans_and_the_borrower_closes_none(db, demo_version):
    call_command("seed_demo", verbosity=0)
    from django.contrib.auth import get_user_model

    users = {user.username: user for user in get_user_model().objects.all()}

    with pytest.raises(PartNotStartable):
        services.start_process(workflow_id="phase-closing", user=users["bob"])
    with pytest.raises(StartNotAllowed):
        services.start_process(workflow_id="journey-purchase-fha", user=users["bob"])
    with pytest.raises(StartNotAllowed):
        services.start_processes(workflow_id="journey-purchase-fha", user=users["manager"], contexts=[{}] * 3)
    with pytest.raises(PartNotStartable):
        services.start_process(workflow_id="phase-underwriting", user=users["olivia"])
    assert started_nothing()

    for workflow_id in ("journey-purchase-fha", "phase-application", "phase-processing"):
        services.start_process(workflow_id=workflow_id, user=users["olivia"])
    services.start_process(workflow_id="phase-closing", user=users["admin"])
    assert ProcessInstance.objects.count() == 4
