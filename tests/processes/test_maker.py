"""`steps.rows.maker` makes the instances the model's constructor and `from_db` make: the
same attribute values, related instances cached alike, the same state, for every installed
model it makes itself, and the constructor's own answer for the others."""

from __future__ import annotations

import datetime

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models.signals import post_init

from processes.models import ProcessEvent, ProcessInstance
from steps.rows import Maker, maker
from tasks.models import TaskInstance, TaskUserObjectPermission

MODELS = apps.get_models()


def comparable(obj) -> dict:
    # A default made at each call (`timezone.now`, `uuid.uuid4`) differs from call to call:
    # of those, only the type is compared; a mutable one (`dict`) is compared whole.
    made = _made_at_each_call(type(obj))
    return {name: f"a {type(value).__name__}" if name in made and not isinstance(value, (dict, list)) else value
            for name, value in obj.__dict__.items() if name != "_state"}


def _made_at_each_call(model) -> set[str]:
    return {field.attname for field in model._meta.concrete_fields if field.has_default() and callable(field.default)}


def same(made, expected) -> None:
    assert type(made) is type(expected)
    assert comparable(made) == comparable(expected)
    assert made._state.adding == expected._state.adding and made._state.db == expected._state.db
    assert made._state.fields_cache == expected._state.fields_cache


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_a_new_instance_with_nothing_given_holds_the_defaults(model):
    same(maker(model).new(), model())


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_a_loaded_row_is_the_instance_from_db_makes(model):
    fields = model._meta.concrete_fields
    names = [field.attname for field in fields]
    values = [f"value of {name}" for name in names]
    same(maker(model).loaded(names, values, "default"), model.from_db("default", names, values))
    some = names[: max(1, len(names) // 2)]
    same(maker(model).loaded(some, values[: len(some)], "default"),
         model.from_db("default", some, values[: len(some)]))


def test_the_hot_path_models_are_made_without_their_constructor():
    for model in (TaskInstance, ProcessInstance, ProcessEvent, TaskUserObjectPermission, get_user_model()):
        assert maker(model).plain, model


def test_values_by_attribute_name_and_related_instances_by_field_name():
    process = ProcessInstance(pk=41, workflow_id="journey-x")
    user = get_user_model()(pk=7, username="ann")
    values = dict(process=process, atom_id="atom-a", name="A", kind="human", role="role-r", priority="high",
                  priority_rank=0, assigned_to=user, due_date=None, data={"k": 1}, pk=99)
    made, expected = maker(TaskInstance).new(**values), TaskInstance(**values)
    same(made, expected)
    assert made.process is process and made.assigned_to is user and made.pk == 99
    unassigned = maker(TaskInstance).new(process=process, assigned_to=None)
    same(unassigned, TaskInstance(process=process, assigned_to=None))
    assert unassigned.assigned_to is None


def test_callable_defaults_are_called_for_each_instance_not_shared():
    first, second = maker(ProcessEvent).new(process_id=1), maker(ProcessEvent).new(process_id=1)
    assert first.payload == {} and first.payload is not second.payload
    given = maker(ProcessEvent).new(process_id=1, payload={"a": 1}, timestamp=datetime.datetime(2026, 1, 1))
    assert given.payload == {"a": 1} and given.timestamp == datetime.datetime(2026, 1, 1)


def test_anything_it_does_not_know_goes_to_the_constructor():
    with pytest.raises(TypeError, match="unexpected keyword"):
        maker(ProcessEvent).new(process_id=1, no_such_field=2)


def test_a_model_whose_construction_is_listened_to_is_made_by_its_constructor():
    heard = []

    def listener(sender, instance, **kwargs):
        heard.append(instance)

    post_init.connect(listener, sender=ProcessEvent)
    try:
        fresh = Maker(ProcessEvent)
        assert not fresh.plain
        made = fresh.new(process_id=3)
        assert heard == [made]
    finally:
        post_init.disconnect(listener, sender=ProcessEvent)
