"""The shipped settings with the fix for the ASGI connection leak applied from outside:
no persistent connections (Django: "When using ASGI, persistent connections should be
disabled"). Jepsen-lite's servers run on it by default (JEPSEN_SHIPPED_SETTINGS=1 runs them
on gndp.settings as shipped); test_connection_budget.py shows the leak itself.
Remove this module once gndp/settings.py carries the fix."""

from gndp.settings import *  # noqa: F401,F403
from gndp.settings import DATABASES

DATABASES["default"]["CONN_MAX_AGE"] = 0
