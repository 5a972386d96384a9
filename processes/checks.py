"""System checks for the security settings of this project (`manage.py check --deploy`)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from gndp.addresses import check_trusted_proxies

from . import sensitive


@checks.register(checks.Tags.security)
def field_keys_valid(app_configs, **kwargs):
    try:
        sensitive.keyring()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="gndp.E001")]
    return []


@checks.register(checks.Tags.security, deploy=True)
def field_keys_set(app_configs, **kwargs):
    if settings.GNDP_FIELD_KEYS:
        return []
    return [checks.Warning(
        "GNDP_FIELD_KEYS is not set: sensitive fields are encrypted with a key derived from SECRET_KEY.",
        hint="Set GNDP_FIELD_KEYS to one or more Fernet keys (newest first), kept outside the database.",
        id="gndp.W001",
    )]


@checks.register(checks.Tags.security, deploy=True)
def secret_key_set(app_configs, **kwargs):
    if not getattr(settings, "SECRET_KEY_GENERATED", False):
        return []
    return [checks.Warning(
        "SECRET_KEY is not set: a key generated into this machine's var folder is used.",
        hint="Set SECRET_KEY (50+ random characters) in the environment, the same for every server and worker, "
             "so that sessions and signed links stay valid across machines and redeploys.",
        id="gndp.W002",
    )]


@checks.register(checks.Tags.security)
def trusted_proxies_valid(app_configs, **kwargs):
    try:
        check_trusted_proxies()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="gndp.E002")]
    return []
