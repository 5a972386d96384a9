"""Settings of the Viewflow peer: a minimal Django project on PostgreSQL, in its own
virtualenv (bench/peers/requirements-viewflow.txt), configured as Viewflow's documentation
says (`viewflow` and `viewflow.workflow` installed, PostgreSQL, DEBUG off)."""

import os

SECRET_KEY = "peer-benchmark-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "viewflow",
    "viewflow.workflow",
    "loans",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "vf_urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PEER_DB_NAME", "gndp_peer_viewflow"),
        "HOST": os.environ.get("PEER_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("PEER_DB_PORT", "5432"),
        "USER": os.environ.get("PEER_DB_USER", "postgres"),
        # The same connection options as our project's PostgreSQL settings.
        "OPTIONS": {"server_side_binding": os.environ.get("PEER_SERVER_SIDE_BINDING", "1") == "1"},
    }
}
