"""Endpoints that take a user's name answer a caller who may not name that user exactly as
they answer for a name nobody holds: whose inbox and counters may be read (the user itself,
its manager, an administrator who sees every task), and no page, admin view or mention
tells an existing account from an unknown one."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.test import APIClient

from processes.services import start_process
from tasks.models import Profile, TaskInstance
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def people(small_version, clerk):
    """clara (role-clerk) reports to mona and holds a task; otto manages another team and
    is staff; ada is staff with the permission to see every task; root is a superuser."""
    mona = UserFactory(username="mona")
    otto = UserFactory(username="otto", is_staff=True)
    UserFactory(username="olga", roles=["role-clerk"])
    Profile.objects.filter(user=clerk).update(manager=mona)
    Profile.objects.filter(user__username="olga").update(manager=otto)
    process = start_process(workflow_id="journey-small", user=clerk)
    ada = UserFactory(username="ada", is_staff=True)
    ada.user_permissions.set(Permission.objects.filter(codename="view_all_tasks"))
    return {"clara": clerk, "mona": mona, "otto": otto, "ada": ada,
            "root": UserFactory(username="root", is_superuser=True, is_staff=True),
            "stranger": UserFactory(username="stranger"),
            "task": TaskInstance.objects.get(process=process, atom_id="atom-apply")}


@pytest.mark.parametrize("path", ["/api/tasks/stats", "/api/tasks/inbox"])
def test_only_the_manager_and_administrators_read_another_users_counters_and_inbox(people, path):
    answers = {caller: api(people[caller]).get(path, {"user_id": "clara"})
               for caller in ("clara", "mona", "ada", "root", "otto", "stranger")}

    assert {caller: r.status_code for caller, r in answers.items()} == dict(
        clara=200, mona=200, ada=200, root=200, otto=404, stranger=404)
    if path.endswith("stats"):
        assert answers["mona"].json()["pending"] == 1
    else:
        assert [t["id"] for t in answers["mona"].json()] == [people["task"].pk]
    unknown = api(people["otto"]).get(path, {"user_id": "nobody-by-this-name"})
    assert answers["otto"].content == answers["stranger"].content == unknown.content
    assert unknown.json()["error"]["code"] == "not_found"


def test_a_mention_of_someone_who_cannot_see_the_process_reads_like_an_unknown_name(people):
    clara = api(people["clara"])
    process_id = people["task"].process_id

    stranger = clara.post(f"/api/processes/{process_id}/comments", {"body": "ask @stranger"}, format="json")
    unknown = clara.post(f"/api/processes/{process_id}/comments", {"body": "ask @nobody1"}, format="json")

    assert stranger.status_code == unknown.status_code == 201
    assert stranger.json()["mentions"] == unknown.json()["mentions"] == []
    assert stranger.json()["body_html"].replace("stranger", "X") == unknown.json()["body_html"].replace("nobody1", "X")


def test_the_admins_user_lookups_answer_unprivileged_staff_alike(people):
    client = Client()
    client.force_login(people["otto"])
    lookup = {"app_label": "tasks", "model_name": "profile", "field_name": "manager"}

    known = client.get("/admin/autocomplete/", {**lookup, "term": "clara"})
    unknown = client.get("/admin/autocomplete/", {**lookup, "term": "nobody1"})
    existing_page = client.get(f"/admin/auth/user/{people['clara'].pk}/change/")
    missing_page = client.get("/admin/auth/user/999999/change/")

    assert known.status_code == unknown.status_code == existing_page.status_code == missing_page.status_code == 403
    # The error page carries a CSRF token, masked anew for every response.
    assert same_page(known, unknown) and same_page(existing_page, missing_page)


def same_page(one, other) -> bool:
    token = re.compile(rb'("X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]+')
    return token.sub(rb"\1", one.content) == token.sub(rb"\1", other.content)
