"""S7: every route of the URLconf (pages, API, admin), walked from the resolver itself, so a
new route is covered the day it is added.

- An unsafe method (POST, PUT, PATCH, DELETE) with a signed-in session but no CSRF token is
  refused with 403 on every route, and nothing in the database changes (ASVS 3.5.1).
- GET and HEAD on every route change nothing in the database, for an administrator and for
  a plain user (ASVS 3.5.3), and never answer 5xx.
"""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

from processes.models import ProcessInstance
from processes.services import start_process
from tasks import services as task_services
from tasks.models import TaskInstance
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

UNSAFE = ("post", "put", "patch", "delete")
# Written by every signed-in request of the test client itself, not by the views.
IGNORED_TABLES = {"django_session"}
_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>[^()]*(?:\([^()]*\)[^()]*)*)\)")
_CONVERTER = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")


def _patterns(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _first_pk(model_name: str):
    for model in apps.get_models():
        if model._meta.model_name == model_name.replace("_", ""):
            return model.objects.order_by("pk").values_list("pk", flat=True).first()
    return None


def _value(name: str, route: str, world: dict, converter: str | None = None) -> str:
    if name in ("task_id",) or (name == "pk" and "tasks/" in route):
        return str(world["task"].pk)
    if name in ("process_id",) or (name == "pk" and "processes/" in route):
        return str(world["process"].pk)
    if name == "journey_id":
        return "journey-small"
    if name == "app_label":
        return "processes"
    if name == "content_type_id":
        return str(ContentType.objects.get_for_model(ProcessInstance).pk)
    if name == "url":
        return "no-such-page/"
    if name == "uidb64":
        return "MQ"
    if name == "token":
        return "set-password"
    if name in ("object_id", "id"):
        match = re.search(r"admin/(\w+)/(\w+)/", route)
        if name == "id":
            return str(world["admin"].pk)
        if match and match.group(1) != "r":
            pk = _first_pk(match.group(2))
            return str(pk if pk is not None else 999999)
        return str(world["process"].pk)
    if name.endswith("_id"):  # notification_id, attachment_id, ...: the first such object
        pk = _first_pk(name[:-3])
        return str(pk if pk is not None else 999999)
    return "999999" if converter == "int" else "x"


def concrete_paths(world: dict) -> list[str]:
    """One concrete path per route: parameters filled with real objects where they exist."""
    paths = []
    for route in _patterns(get_resolver().url_patterns):
        path = _GROUP.sub(lambda m: _value(m["name"], route, world), route)
        path = _CONVERTER.sub(lambda m: _value(m["name"], route, world, m["conv"]), path)
        path = "/" + path.replace("^", "").replace("$", "").replace(r"\Z", "")
        try:
            resolve(path)
        except Resolver404:
            raise AssertionError(f"could not build a path for route {route!r}: {path!r}") from None
        if path not in paths:
            paths.append(path)
    return paths


def snapshot() -> dict[str, str]:
    """A digest of every row of every table."""
    digests = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            if table in IGNORED_TABLES:
                continue
            cursor.execute(f'SELECT md5(coalesce(string_agg(t::text, \',\' ORDER BY t::text), \'\')) FROM "{table}" t')
            digests[table] = cursor.fetchone()[0]
    return digests


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(table for table in after if before.get(table) != after[table])


@pytest.fixture
def world(small_version, clerk, checker):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    done = start_process(workflow_id="journey-small", user=clerk)
    task_services.complete_task(TaskInstance.objects.get(process=done, atom_id="atom-apply").pk, user=clerk,
                                result={"amount": 1, "score": 700})
    process = start_process(workflow_id="journey-small", user=clerk, context={"ref": "csrf"})
    task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
    return {"admin": admin, "clerk": clerk, "process": process, "task": task}


def signed_in(user, csrf_checks: bool) -> Client:
    client = Client(enforce_csrf_checks=csrf_checks)
    client.force_login(user)
    return client


def test_every_unsafe_method_with_a_session_and_no_csrf_token_is_refused(world):
    paths = concrete_paths(world)
    assert len(paths) > 100  # the walk found the pages, the API and the admin
    clients = {"administrator": signed_in(world["admin"], True), "user": signed_in(world["clerk"], True)}
    accepted, changes = [], []
    for path in paths:
        before = snapshot()
        for method in UNSAFE:
            for who, client in clients.items():
                response = getattr(client, method)(path, data={}, content_type="application/json"
                                                   if method != "post" else "application/x-www-form-urlencoded")
                if response.status_code != 403:
                    accepted.append(f"{method.upper()} {path} as {who}: {response.status_code}")
        changes += [f"{path} changed {table}" for table in changed(before, snapshot())]

    assert accepted == []
    assert changes == []


def test_with_the_token_the_same_writes_get_through(world):
    """The control: the refusals above are the CSRF check, not some other refusal."""
    client = signed_in(world["clerk"], True)
    client.get("/inbox/")  # the page sets the CSRF cookie
    token = client.cookies["csrftoken"].value

    api = client.post(f"/api/tasks/{world['task'].pk}/complete", {"result": {"amount": 2, "score": 700}},
                      content_type="application/json", HTTP_X_CSRFTOKEN=token)
    page = client.post("/processes/start/", {"workflow_id": "journey-small", "context": "{}",
                                             "csrfmiddlewaretoken": token})

    assert api.status_code == 200, api.content
    assert page.status_code == 302


@pytest.mark.parametrize("who", ["admin", "clerk"])
def test_get_and_head_change_nothing_on_any_route(world, who):
    paths = concrete_paths(world)
    client = signed_in(world[who], False)
    client.raise_request_exception = False
    errors, changes = [], []
    for path in paths:
        before = snapshot()
        for method in ("get", "head"):
            response = getattr(client, method)(path)
            if response.status_code >= 500:
                errors.append(f"{method.upper()} {path}: {response.status_code}")
        changes += [f"GET/HEAD {path} changed {table}" for table in changed(before, snapshot())]

    assert errors == []
    assert changes == []
