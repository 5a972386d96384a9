"""ISO 8601 durations for SLA targets and escalations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processes.engine.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "delta", "canonical"),
    [
        ("P30D", timedelta(days=30), "P30D"),
        ("PT4H", timedelta(hours=4), "PT4H"),
        ("PT6H", timedelta(hours=6), "PT6H"),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30), "P1DT2H30M"),
        ("PT0.5S", timedelta(milliseconds=500), "PT0.5S"),
        ("PT0,25S", timedelta(milliseconds=250), "PT0.25S"),
        ("PT0.1S", timedelta(microseconds=100_000), "PT0.1S"),
        ("PT1.000001S", timedelta(seconds=1, microseconds=1), "PT1.000001S"),
        ("P2W", timedelta(weeks=2), "P14D"),
        ("P1Y", timedelta(days=365), "P365D"),
        ("P1M", timedelta(days=30), "P30D"),
        ("PT1M", timedelta(minutes=1), "PT1M"),
        ("P1Y2M3W4DT5H6M7S", timedelta(days=365 + 60 + 21 + 4, hours=5, minutes=6, seconds=7), "P450DT5H6M7S"),
        ("PT90M", timedelta(minutes=90), "PT1H30M"),
        ("PT36H", timedelta(hours=36), "P1DT12H"),
        ("PT1.5H", timedelta(minutes=90), "PT1H30M"),
        ("P0.5D", timedelta(hours=12), "PT12H"),
        ("PT0S", timedelta(0), "PT0S"),
        ("P0D", timedelta(0), "PT0S"),
        ("pt4h", timedelta(hours=4), "PT4H"),
        ("P1DT0.5S", timedelta(days=1, milliseconds=500), "P1DT0.5S"),
    ],
)
def test_parses_and_formats_canonically(text, delta, canonical):
    assert parse_duration(text) == delta
    assert format_duration(delta) == canonical
    assert parse_duration(canonical) == delta


@pytest.mark.parametrize(
    "text",
    ["", "P", "PT", "P1DT", "4h", "1D", "P-1D", "-P1D", "P1H", "PT1D", "P1S", "P1D2H", "PT1H2", " PT1H", "PT1H ",
     "P1.5DT2H", "PT1.5H30M", "P1,5Y1M", "PT.5S", "PT1.S", "P١D", "P1DT1H1M1S1", "PT4HX", "P" + "9" * 80 + "D"],
)
def test_rejects_what_is_not_an_iso_duration(text):
    with pytest.raises(ValueError) as exc:
        parse_duration(text)

    assert "duration" in str(exc.value)


@pytest.mark.parametrize("value", [None, 4, 4.0, True, b"PT4H", ["PT4H"], timedelta(hours=1)])
def test_rejects_non_strings_with_a_clear_message(value):
    with pytest.raises(ValueError, match="a duration must be a string"):
        parse_duration(value)


def test_too_long_is_a_value_error_not_an_overflow():
    with pytest.raises(ValueError, match="too long"):
        parse_duration("P99999999999999Y")


def test_message_names_the_bad_text_and_gives_examples():
    with pytest.raises(ValueError) as exc:
        parse_duration("4 hours")

    assert str(exc.value) == "invalid ISO 8601 duration '4 hours' (e.g. PT4H, P2D, P1DT12H, PT0.5S)"


def test_negative_timedelta_has_no_iso_form():
    with pytest.raises(ValueError):
        format_duration(timedelta(seconds=-1))


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=100_000)))
def test_format_then_parse_is_identity(delta):
    text = format_duration(delta)

    assert parse_duration(text) == delta
    assert format_duration(parse_duration(text)) == text


@given(st.text(alphabet="PTYMWDHS0123456789.,-+ ", max_size=20) | st.text(max_size=20))
def test_parse_raises_only_value_error(text):
    try:
        delta = parse_duration(text)
    except ValueError:
        return
    assert delta >= timedelta(0)
    assert parse_duration(format_duration(delta)) == delta
