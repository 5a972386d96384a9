"""Template helpers of the dashboard: who sees the link, and durations for people."""

from __future__ import annotations

from django import template

from monitoring import selectors

register = template.Library()


@register.filter
def sees_dashboard(user) -> bool:
    return selectors.sees_dashboard(user)


HEALTH_LABELS = {"on-track": "On track", "delayed": "Delayed", "blocked": "Blocked"}


@register.filter
def health_label(state) -> str:
    return HEALTH_LABELS.get(state, str(state or "").replace("_", " ").capitalize())


@register.filter
def duration(seconds) -> str:
    """Seconds as the two largest units: `45s`, `12m`, `3h 20m`, `4d 6h`; an em dash for none."""
    if seconds is None or seconds == "":
        return "—"
    total = int(round(float(seconds)))
    sign, total = ("-", -total) if total < 0 else ("", total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days}d {hours}h" if hours else f"{days}d"
    elif hours:
        text = f"{hours}h {minutes}m" if minutes else f"{hours}h"
    elif minutes:
        text = f"{minutes}m"
    else:
        text = f"{secs}s"
    return sign + text


@register.filter
def percent(value, digits: int = 0) -> str:
    """A percentage for display (`87%`); an em dash when there is nothing to measure."""
    if value is None or value == "":
        return "—"
    return f"{float(value):.{int(digits)}f}%"


@register.filter
def share(ratio) -> str:
    """A ratio as a share of a whole: 0.5 -> `50%`, 0.001 -> `<1%`; an em dash for none."""
    if ratio is None or ratio == "":
        return "—"
    value = float(ratio) * 100
    return "<1%" if 0 < value < 1 else f"{value:.0f}%"
