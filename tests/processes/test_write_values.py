"""A step's writes prepare a value as the ORM would have (`steps.writes._Column`), taking it
as it is only where the ORM would have left it unchanged (`_passes`): checked for every field of
every installed model, against values of many types, on the test run's own database backend."""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid

import pytest
from django.apps import apps
from django.db import connection
from django.utils.functional import lazystr
from hypothesis import given, settings
from hypothesis import strategies as st

from steps.writes import _Column, _passes, _prepared, _row_values

FIELDS = [field for model in apps.get_models() for field in model._meta.concrete_fields]


class Colour(str, enum.Enum):
    RED = "red"


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20),
    st.floats(allow_nan=False), st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.just(datetime.timezone.utc)), st.datetimes(), st.dates(), st.uuids(),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), st.lists(st.integers(), max_size=3),
    st.just(Colour.RED),
    st.just(lazystr("lazy")), st.timedeltas(),
)


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from(FIELDS), value=VALUES)
def test_a_value_passed_as_it_is_is_what_the_field_would_have_prepared(field, value):
    if type(value) not in _passes(field):
        return
    prepared = field.get_db_prep_save(value, connection)
    assert prepared is value or (type(prepared) is type(value) and prepared == value)


def _outcome(prepare):
    try:
        value = prepare()
    except Exception as error:  # noqa: BLE001 - the same failure is the same answer
        return ("raises", type(error))
    return (type(value), repr(value), repr(getattr(value, "obj", None)), getattr(value, "dumps", None))


@pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime")
@settings(max_examples=1500, deadline=None)
@given(field=st.sampled_from(FIELDS), value=VALUES)
def test_every_value_is_prepared_as_the_field_prepares_it(field, value):
    assert _outcome(lambda: _Column(field).prepare(value, connection)) == \
        _outcome(lambda: field.get_db_prep_save(value, connection))


def test_the_step_models_pass_their_plain_columns_and_prepare_the_rest():
    from processes.models import ProcessEvent
    from tasks.models import TaskInstance

    passes = {field.name: _passes(field) for field in TaskInstance._meta.concrete_fields}
    assert str in passes["atom_id"] and int in passes["process"] and int in passes["id"]
    assert passes["version"] == (type(None),)  # PostgreSQL sends other integers as their column's type
    assert passes["data"] == () and passes["sla_paused_for"] == ()  # JSON and durations: adapted
    assert passes["due_date"] == (type(None),)  # an aware datetime is adapted per backend
    assert _passes(ProcessEvent._meta.get_field("payload")) == ()


def test_rows_and_updates_are_prepared_as_the_orm_prepares_them():
    from processes.models import ProcessEvent

    event = ProcessEvent(process_id=7, type=ProcessEvent._meta.get_field("type").choices[0][0], user_id=None,
                         username="ann", task_id=9, atom_id="atom-a", payload={"k": [1, 2]}, seq=3,
                         row_hash="ab" * 32, timestamp=datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc))
    columns = [_Column(field) for field in ProcessEvent._meta.concrete_fields if not field.primary_key]
    orm = [column.field.get_db_prep_save(column.field.pre_save(event, True), connection) for column in columns]
    ours = _row_values(columns, event, connection)
    assert [repr(value) for value in ours] == [repr(value) for value in orm]
    values = [getattr(event, column.attname) for column in columns]
    assert [repr(value) for value in _prepared(columns, values, connection)] == [repr(value) for value in orm]


def test_a_field_that_sets_its_own_value_on_insert_is_asked_for_it():
    from processes.models import WorkflowVersion

    version = WorkflowVersion(journey_id="j", number=1, hash="h", name="n", definition={})
    column = _Column(WorkflowVersion._meta.get_field("created_at"))  # auto_now_add
    assert _row_values([column], version, connection)[0] is not None and version.created_at is not None


def test_an_integer_key_given_as_a_string_or_uuid_is_still_prepared():
    from tasks.models import TaskInstance

    field = TaskInstance._meta.get_field("process")
    assert _prepared([_Column(field)], ["12"], connection) == [12]
    assert type(uuid.uuid4()) not in _passes(field) and decimal.Decimal not in _passes(field)
