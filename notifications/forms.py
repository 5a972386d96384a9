"""The preferences form of the profile page: a checkbox per kind and channel, quiet hours."""

from __future__ import annotations

import zoneinfo

from django import forms

from .kinds import CHANNELS, Channel, Kind

COMMON_ZONES = sorted(zoneinfo.available_timezones())


def field_name(kind: str, channel: str) -> str:
    return f"{kind}__{channel}"


class PreferencesForm(forms.Form):
    email = forms.EmailField(required=False, label="Email address",
                             help_text="Where emails go. Empty: no emails at all.")
    quiet_start = forms.TimeField(required=False, label="Quiet from", widget=forms.TimeInput(attrs={"type": "time"}))
    quiet_end = forms.TimeField(required=False, label="until", widget=forms.TimeInput(attrs={"type": "time"}))
    timezone = forms.ChoiceField(choices=[(zone, zone) for zone in COMMON_ZONES], label="Time zone")

    def __init__(self, *args, preference=None, user=None, **kwargs):
        initial = kwargs.pop("initial", {})
        if preference is not None:
            initial.update({"quiet_start": preference.quiet_start, "quiet_end": preference.quiet_end,
                            "timezone": preference.timezone})
            for kind in Kind.values:
                for channel in CHANNELS:
                    initial[field_name(kind, channel)] = channel in preference.channels_for(kind)
        if user is not None:
            initial["email"] = user.email
        super().__init__(*args, initial=initial, **kwargs)
        for kind in Kind:
            for channel in Channel:
                self.fields[field_name(kind.value, channel.value)] = forms.BooleanField(
                    required=False, label=f"{kind.label}: {channel.label}")

    def clean(self):
        data = super().clean()
        if (data.get("quiet_start") is None) != (data.get("quiet_end") is None):
            self.add_error("quiet_end", "Give both ends of the quiet hours, or neither.")
        return data

    def rows(self):
        """(kind label, [bound checkbox per channel]) for the table."""
        return [(kind.label, [self[field_name(kind.value, channel)] for channel in CHANNELS]) for kind in Kind]

    def channels(self) -> dict[str, list[str]]:
        return {kind: [channel for channel in CHANNELS if self.cleaned_data.get(field_name(kind, channel))]
                for kind in Kind.values}
