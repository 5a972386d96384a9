"""The HTML form of a task, generated from its atom's `form` declaration."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django import forms

from processes.engine.blueprint import Atom, FormField
from processes.engine.bounds import DEFAULT_BOUNDS, Bounds

BOOLEAN_CHOICES = [("", "Choose…"), ("true", "Yes"), ("false", "No")]


def _field(spec: FormField, bounds: Bounds) -> forms.Field:
    label = spec.label or spec.name.replace("_", " ").capitalize()
    common = {"label": label, "required": spec.required}
    if spec.type == "number":
        return forms.DecimalField(**common, widget=forms.NumberInput(attrs={"step": "any"}))
    if spec.type == "integer":
        return forms.IntegerField(**common)
    if spec.type == "boolean":
        # A yes/no choice, not a checkbox: an unticked box cannot say "I answered no".
        return forms.TypedChoiceField(**common, choices=BOOLEAN_CHOICES, coerce=lambda v: v == "true",
                                      empty_value=None)
    if spec.type == "date":
        return forms.DateField(**common, widget=forms.DateInput(attrs={"type": "date"}))
    if spec.type == "choice":
        choices = [("", "Choose…")] + [(str(c), str(c)) for c in spec.choices]
        return forms.TypedChoiceField(**common, choices=choices, coerce=_choice_coercer(spec), empty_value=None)
    attrs = {"autocomplete": "off"} if spec.sensitive else {}
    return forms.CharField(**common, max_length=bounds.limit_for(spec), widget=forms.TextInput(attrs=attrs))


def _choice_coercer(spec: FormField):
    by_text = {str(choice): choice for choice in spec.choices}
    return lambda value: by_text[value]


def task_form(atom: Atom, data=None, bounds: Bounds = DEFAULT_BOUNDS) -> forms.Form:
    form = forms.Form(data=data)
    for spec in atom.form:
        form.fields[spec.name] = _field(spec, bounds)
    return form


def without_overlong_values(form: forms.Form) -> forms.Form:
    """The refused form as it is shown again: a value longer than its field allows is left
    out (the error says why), so the page does not carry megabytes back."""
    if form.is_bound and form.errors:
        data = form.data.copy()
        for name, field in form.fields.items():
            limit = getattr(field, "max_length", None)
            if limit is not None and len(str(data.get(name, ""))) > limit:
                data[name] = ""
        form.data = data
    return form


def to_result(cleaned: dict[str, Any]) -> dict[str, Any]:
    """Cleaned form data as the JSON result the engine validates (blank optional fields dropped)."""
    result = {}
    for name, value in cleaned.items():
        if value is None or value == "":
            continue
        if isinstance(value, Decimal):
            value = int(value) if value == value.to_integral_value() else float(value)
        elif isinstance(value, datetime.date):
            value = value.isoformat()
        result[name] = value
    return result
