"""Settings read from the environment, with embedded defaults that need nothing installed.

Unset `DATABASE_URL`, `REDIS_URL` and `NEO4J_URI` give SQLite, the in-memory channel layer,
a folder queue as the Celery broker (gndp.filequeue) and the embedded graph store: `make
run` works on a laptop with nothing but Python. Set them and the same code runs on PostgreSQL, Redis and Neo4j.
"""

import os
from pathlib import Path

import dj_database_url

from gndp.hosts import default_allowed_hosts
from gndp.secret import generated_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GNDP_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Off unless asked for (`make dev`, DEBUG=1): Django's debug pages show the URL patterns, the
# settings and tracebacks to whoever reaches the server.
DEBUG = env_bool("DEBUG", False)
# Unset: generated once into the var folder and kept (gndp.secret); never a default in the source.
SECRET_KEY = os.environ.get("SECRET_KEY") or generated_secret_key(VAR_DIR)
SECRET_KEY_GENERATED = not os.environ.get("SECRET_KEY")
# Unset: this machine's loopback names, plus the address `make run` binds (HOST).
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ",".join(default_allowed_hosts(os.environ.get("HOST", ""))))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "guardian",
    "django_htmx",
    "csp",
    "channels",
    "processes",
    "tasks",
    "monitoring",
    "notifications",
    "collaboration",
    "anomalies",
    "privacy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below WhiteNoise: every response but a static file. No page or API answer is cached.
    "gndp.middleware.NoStoreMiddleware",
    "gndp.middleware.ContentSecurityPolicyMiddleware",
    "gndp.middleware.RejectNulBytesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The request's user scope for PostgreSQL row-level security, and the replica routing.
    "gndp.rls.RowLevelSecurityMiddleware",
    "gndp.db_router.ReplicaRoutingMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "gndp.middleware.ServiceErrorPageMiddleware",
]

ROOT_URLCONF = "gndp.urls"
ASGI_APPLICATION = "gndp.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- state -------------------------------------------------------------------------------
# WAL lets readers proceed beside the one writer; IMMEDIATE takes the write lock at BEGIN,
# so two writers serialise (waiting up to `timeout` seconds) instead of failing halfway
# through a step with "database is locked". Every SQLite database gets them, however named.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
SQLITE_TEST = {"NAME": os.environ.get("SQLITE_TEST_PATH", str(VAR_DIR / "test.sqlite3"))}


def sqlite_database(settings_dict: dict) -> dict:
    """`settings_dict` with the embedded default's SQLite options under its own."""
    if settings_dict.get("ENGINE") == "django.db.backends.sqlite3":
        settings_dict["OPTIONS"] = {**SQLITE_OPTIONS, **settings_dict.get("OPTIONS", {})}
        settings_dict["TEST"] = {**SQLITE_TEST, **settings_dict.get("TEST", {})}
    return settings_dict


DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # No persistent connections: under ASGI each request runs in a thread of its own, and a
    # connection kept per thread is a connection leaked. The pool below reuses them instead.
    DATABASES = {"default": sqlite_database(dj_database_url.parse(DATABASE_URL, conn_max_age=0))}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's own, with a savepoint's release sent with later work (steps/postgresql).
        DATABASES["default"]["ENGINE"] = "steps.postgresql"
        _options = DATABASES["default"].setdefault("OPTIONS", {})
        # Server-side parameters, and statements prepared once per connection after they ran
        # `prepare_threshold` times: planning the hot path's statements cost more than running
        # them. Django turns preparing off by default for the sake of transaction-mode
        # poolers (PgBouncer before 1.21); DATABASE_PREPARE_THRESHOLD=off does the same here.
        _options["server_side_binding"] = True
        _prepare = os.environ.get("DATABASE_PREPARE_THRESHOLD", "2")
        _options["prepare_threshold"] = None if _prepare.lower() in ("off", "none", "") else int(_prepare)
        if env_bool("DATABASE_POOL", True):
            # One pool per process, bounded: concurrency beyond it waits instead of opening
            # connections until PostgreSQL refuses everyone.
            _options["pool"] = {
                "min_size": int(os.environ.get("DATABASE_POOL_MIN", "1")),
                "max_size": int(os.environ.get("DATABASE_POOL_MAX", "8")),
                "timeout": float(os.environ.get("DATABASE_POOL_TIMEOUT", "10")),
            }
            # With the pool, Django turns health checks into the pool's check on checkout: a
            # connection the server dropped while it sat idle is replaced, not handed out.
            DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {"default": sqlite_database({
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SQLITE_PATH", str(VAR_DIR / "gndp.sqlite3")),
    })}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# A service's transaction that PostgreSQL aborts to break a deadlock (40P01) or a
# serialization conflict (40001) runs again this many more times, after a jittered wait of
# up to base * 2**(n-1) seconds (gndp.db_faults.retry_transaction).
GNDP_TRANSACTION_RETRIES = int(os.environ.get("GNDP_TRANSACTION_RETRIES", "3"))
GNDP_TRANSACTION_RETRY_BACKOFF = float(os.environ.get("GNDP_TRANSACTION_RETRY_BACKOFF", "0.02"))
# A Celery job that finds the database gone is retried this many times, waiting
# base * 2**(n-1) seconds (capped at a minute) before each (gndp.celery.Job).
GNDP_JOB_DB_RETRIES = int(os.environ.get("GNDP_JOB_DB_RETRIES", "5"))
GNDP_JOB_DB_RETRY_BACKOFF = float(os.environ.get("GNDP_JOB_DB_RETRY_BACKOFF", "2"))
# Role separation (processes.db_roles, `manage.py setup_db_roles`): with this set, `migrate`
# connects as the owner role and the app (DATABASE_URL) as a role that owns nothing and may
# not UPDATE, DELETE or TRUNCATE the audit table.
DATABASE_OWNER_URL = os.environ.get("DATABASE_OWNER_URL", "")
if DATABASE_URL and DATABASE_OWNER_URL:
    DATABASES["owner"] = sqlite_database(dj_database_url.parse(DATABASE_OWNER_URL, conn_max_age=0))
# Row-level security (gndp.rls): each request's user, and the engine's scope in every
# transaction, reach PostgreSQL as session settings the policies read.
GNDP_RLS = env_bool("GNDP_RLS", True)
# A read replica (gndp.db_router): monitoring and reporting reads of safe requests go there,
# never inside a transaction nor after a write of the same request.
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
if DATABASE_URL and DATABASE_REPLICA_URL:
    DATABASES["replica"] = sqlite_database(dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=0))
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["gndp.db_router.ReplicaRouter"]
GNDP_REPLICA_PATHS = env_list("GNDP_REPLICA_PATHS", "/api/monitoring/,/dashboard/,/metrics")

AUTHENTICATION_BACKENDS = [
    # ModelBackend with a lockout after repeated failed sign-ins (gndp.login_throttle).
    "gndp.login_throttle.ThrottledModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row; anonymous sees nothing
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # collectstatic fills it; WhiteNoise warns while it is missing
# WhiteNoise serves static files from the app itself, under any ASGI server; straight from
# the source folders, so no collectstatic is needed to run.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- live updates --------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "gndp.channel_layer.BatchingRedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# An open WebSocket checks its session and its access again at least this often while it
# delivers (processes.live_access); sign-outs, account and role changes and moved tasks make
# it check at once.
GNDP_SOCKET_RECHECK_SECONDS = float(os.environ.get("GNDP_SOCKET_RECHECK_SECONDS", "60"))
# With the in-memory layer, a server process with sockets open reads what other processes
# (the worker) committed this often and passes it on live (processes.tail); 0: never.
GNDP_LIVE_TAIL_SECONDS = float(os.environ.get("GNDP_LIVE_TAIL_SECONDS", "0.5"))
# With Redis, a server process with sockets open reads the event log this often and sends
# what no publisher sent (a worker killed between its commit and its publish:
# processes.live_relay); 0: never.
GNDP_LIVE_RELAY_SECONDS = float(os.environ.get("GNDP_LIVE_RELAY_SECONDS", "2"))

# --- background work -----------------------------------------------------------------------
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # A system step unacknowledged this long is redelivered to another worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))}
else:
    # A folder on disk is a broker both the web process and the worker can reach: kombu's
    # file-system transport made safe for concurrent writers and readers (gndp.filequeue).
    _queue_dir = VAR_DIR / "celery-queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "gndpfiles://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_queue_dir),
        "store_processed": False,
        # Kombu's default is ./control relative to the working directory.
        "control_folder": str(VAR_DIR / "celery-control"),
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
# Durable rows, not broker timers, are the truth: this sweep re-sends system steps that a
# broker outage or a lost message left waiting.
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-system-tasks": {"task": "processes.tasks.requeue_stale_system_tasks", "schedule": 30.0},
    "refresh-process-predictions": {"task": "processes.tasks.refresh_process_predictions", "schedule": 300.0},
    # Without NEO4J_URI the mirror answers "off" and runs no query.
    "mirror-runtime-to-neo4j": {"task": "processes.graph.mirror.mirror_runtime", "schedule": 2.0,
                                "options": {"expires": 10}},
    # Two beats by mistake are harmless: the sweep locks with SKIP LOCKED and marks once.
    "sla-sweep": {"task": "monitoring.tasks.sweep_sla", "schedule": 5.0, "options": {"expires": 5.0}},
    "sync-journeys-from-graph": {"task": "processes.sync.sync_journeys_task", "schedule": 300.0,
                                 "options": {"expires": 240}},
    # Notifications for committed events that the after-commit hand-off missed (a crash, a
    # broker outage); delivery is once per event, so running it again changes nothing.
    "relay-notifications": {"task": "notifications.tasks.relay_events", "schedule": 15.0,
                            "options": {"expires": 15}},
    # Emails held for quiet hours, or whose hand-off to a worker was lost.
    "flush-notification-emails": {"task": "notifications.tasks.flush_pending_emails", "schedule": 60.0,
                                  "options": {"expires": 60}},
    "detect-anomalies": {"task": "anomalies.tasks.detect_anomalies",
                         "schedule": float(os.environ.get("GNDP_ANOMALY_INTERVAL", "300")),
                         "options": {"expires": 240}},
    # Finished processes past their journey's retention lose their personal data.
    "purge-expired-processes": {"task": "privacy.tasks.purge_expired_processes", "schedule": 3600.0,
                                "options": {"expires": 3000}},
}
CELERY_ACCEPT_CONTENT = ["json"]

# --- graph ---------------------------------------------------------------------------------
NEO4J_URI = os.environ.get("NEO4J_URI", "")
NEO4J_USER = os.environ.get("NEO4J_USER", "neo4j")
NEO4J_PASSWORD = os.environ.get("NEO4J_PASSWORD", "")
NEO4J_DATABASE = os.environ.get("NEO4J_DATABASE") or None
NEO4J_TIMEOUT = float(os.environ.get("NEO4J_TIMEOUT", "30"))
NEO4J_CONNECTION_TIMEOUT = float(os.environ.get("NEO4J_CONNECTION_TIMEOUT", "5"))
NEO4J_ACQUISITION_TIMEOUT = float(os.environ.get("NEO4J_ACQUISITION_TIMEOUT", "5"))
NEO4J_MAX_RETRY_TIME = float(os.environ.get("NEO4J_MAX_RETRY_TIME", "15"))
NEO4J_POOL_SIZE = int(os.environ.get("NEO4J_POOL_SIZE", "50"))
# Small write batches: some Bolt servers fail on large parameter payloads.
NEO4J_BATCH_ROWS = int(os.environ.get("NEO4J_BATCH_ROWS", "500"))
NEO4J_BATCH_BYTES = int(os.environ.get("NEO4J_BATCH_BYTES", "524288"))
GNDP_MIRROR_GAP_GRACE = float(os.environ.get("GNDP_MIRROR_GAP_GRACE", "10"))

# --- engine --------------------------------------------------------------------------------
# Retry backoff for system handlers: attempt n waits base * 2**(n-1) seconds, capped.
GNDP_RETRY_BACKOFF_BASE = float(os.environ.get("GNDP_RETRY_BACKOFF_BASE", "1.0"))
GNDP_RETRY_BACKOFF_MAX = float(os.environ.get("GNDP_RETRY_BACKOFF_MAX", "60"))
# Each event carries a SHA-256 chain over its process's history (`manage.py verify_audit`).
GNDP_AUDIT_HASH_CHAIN = env_bool("GNDP_AUDIT_HASH_CHAIN", True)
# Fernet keys for fields a journey marks sensitive, comma separated: the first encrypts,
# all decrypt (`manage.py rotate_field_keys` re-encrypts with the first). Unset: a key
# derived from SECRET_KEY, fine for development only (`check --deploy` warns).
GNDP_FIELD_KEYS = env_list("GNDP_FIELD_KEYS", "")

# --- monitoring ----------------------------------------------------------------------------
# Bearer token Prometheus presents at /metrics; empty means staff sign-in only.
GNDP_METRICS_TOKEN = os.environ.get("GNDP_METRICS_TOKEN", "")
# Every worker process writes a heartbeat row this often (monitoring.heartbeat); one not
# seen for the stale time counts as gone. A system step of a running process open longer
# than the wait time is one no worker has run: the dashboard, /metrics and the anomaly
# detector say so. Each web server process looks for such steps itself every watchdog
# interval (anomalies.watchdog; 0: never), since the beat that runs the detector lives in
# a worker, which may be the thing that is gone.
GNDP_WORKER_HEARTBEAT_SECONDS = float(os.environ.get("GNDP_WORKER_HEARTBEAT_SECONDS", "10"))
GNDP_WORKER_STALE_SECONDS = float(os.environ.get("GNDP_WORKER_STALE_SECONDS", "60"))
GNDP_SYSTEM_STEP_WAIT_SECONDS = float(os.environ.get("GNDP_SYSTEM_STEP_WAIT_SECONDS", "120"))
GNDP_WATCHDOG_SECONDS = float(os.environ.get("GNDP_WATCHDOG_SECONDS", "30"))

# --- notifications and collaboration -----------------------------------------------------------
# The console backend prints emails (the embedded default); EMAIL_HOST switches to SMTP.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", bool(EMAIL_HOST))
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "GNDP Flow <noreply@localhost>")
# Links in emails point here.
GNDP_BASE_URL = os.environ.get("GNDP_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Emails wait this long for others to the same person; this many or more go as one digest.
GNDP_NOTIFICATION_EMAIL_DELAY = float(os.environ.get("GNDP_NOTIFICATION_EMAIL_DELAY", "30"))
GNDP_NOTIFICATION_DIGEST_MIN = int(os.environ.get("GNDP_NOTIFICATION_DIGEST_MIN", "3"))
# With the in-memory channel layer (no Redis), this process delivers its commits'
# notifications itself, batched on a background thread (on PostgreSQL); inline: right after
# each commit, on the committing thread (always on SQLite; and the test suite, which reads
# them back at once).
GNDP_NOTIFICATIONS_INLINE = env_bool("GNDP_NOTIFICATIONS_INLINE", False)
# Attachments go through Django's storage API (STORAGES["default"]: files under MEDIA_ROOT);
# they are never served from MEDIA_ROOT directly, only by a view that checks who asks.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
GNDP_ATTACHMENT_MAX_BYTES = int(os.environ.get("GNDP_ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024)))
GNDP_ATTACHMENT_TYPES = env_list("GNDP_ATTACHMENT_TYPES", "pdf,png,jpg,jpeg,gif,txt,csv,docx,xlsx")

# --- input limits --------------------------------------------------------------------------
# Outside JSON is bounded before it is parsed (gndp.json_input): a larger body is refused with
# 413, a deeper one with 400. Journey files may be larger and nest their conditions deeper;
# a bulk start carries up to 1,000 contexts.
GNDP_JSON_MAX_BYTES = int(os.environ.get("GNDP_JSON_MAX_BYTES", str(1024 * 1024)))
GNDP_JSON_MAX_DEPTH = int(os.environ.get("GNDP_JSON_MAX_DEPTH", "32"))
GNDP_JOURNEY_MAX_BYTES = int(os.environ.get("GNDP_JOURNEY_MAX_BYTES", str(2 * 1024 * 1024)))
GNDP_JOURNEY_MAX_DEPTH = int(os.environ.get("GNDP_JOURNEY_MAX_DEPTH", "128"))
GNDP_BULK_START_MAX_BYTES = int(os.environ.get("GNDP_BULK_START_MAX_BYTES", str(8 * 1024 * 1024)))
# The longest string a user may submit where no form field says otherwise: in task results,
# start contexts, comments, reasons (400 naming the field).
GNDP_MAX_STRING_LENGTH = int(os.environ.get("GNDP_MAX_STRING_LENGTH", "10000"))
# A request without credentials (no live session, no valid API token) may carry this much
# body: the sign-in form. Larger ones are refused before their body is read (gndp.http).
GNDP_ANONYMOUS_BODY_MAX_BYTES = int(os.environ.get("GNDP_ANONYMOUS_BODY_MAX_BYTES", str(16 * 1024)))

# --- API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "gndp.api.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bounded in size and depth before it is parsed (gndp.json_input).
    "DEFAULT_PARSER_CLASSES": [
        "gndp.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "gndp.api.pagination.LimitPagination",
    "EXCEPTION_HANDLER": "gndp.api.exceptions.handle",
    "DEFAULT_THROTTLE_CLASSES": ["gndp.api.throttling.UserRateThrottle"],
    # Fairness between clients, not a security control.
    "DEFAULT_THROTTLE_RATES": {"user": os.environ.get("API_USER_RATE", "100000/hour")},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GNDP Flow API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "gndp.api.schema.add_error_responses",
    ],
}

# --- security ------------------------------------------------------------------------------
# Behind TLS (GNDP_HTTPS=1): HTTPS redirect, HSTS and cookies sent over HTTPS only. Each can
# also be set on its own. SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO trusts the proxy's
# X-Forwarded-Proto: set it only when the proxy always sets that header itself.
GNDP_HTTPS = env_bool("GNDP_HTTPS", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", GNDP_HTTPS)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000" if GNDP_HTTPS else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", GNDP_HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", GNDP_HTTPS)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", GNDP_HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", GNDP_HTTPS)
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER"], "https")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
CSRF_FAILURE_VIEW = "gndp.error_pages.csrf_failure"
SESSION_COOKIE_HTTPONLY = True
# Content-Security-Policy (django-csp): scripts, styles, images and connections from this
# origin only, no inline script or style anywhere (templates carry none; htmx is told not to
# inject its own), no plugins, no framing, forms post here only. User Markdown (comments) is
# sanitised already; this is the second wall. The API docs page loads Swagger UI from its CDN
# (gndp.urls widens the policy for that page alone).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Sign-in lockout (gndp.login_throttle): this many failures for one user name from one
# address lock that pair out for the lockout time; this many for one user name from any
# addresses lock the account for its own lockout time (each counted over its lockout time).
# Counted in the "login" cache, shared by every process through Redis when REDIS_URL is set.
GNDP_LOGIN_FAILURE_LIMIT = int(os.environ.get("GNDP_LOGIN_FAILURE_LIMIT", "5"))
GNDP_LOGIN_LOCKOUT_SECONDS = int(os.environ.get("GNDP_LOGIN_LOCKOUT_SECONDS", "900"))
GNDP_LOGIN_ACCOUNT_FAILURE_LIMIT = int(os.environ.get("GNDP_LOGIN_ACCOUNT_FAILURE_LIMIT", "20"))
GNDP_LOGIN_ACCOUNT_LOCKOUT_SECONDS = int(os.environ.get("GNDP_LOGIN_ACCOUNT_LOCKOUT_SECONDS", "900"))
# The proxies whose X-Forwarded-For is believed (gndp.addresses): addresses and CIDR
# networks, comma separated; none by default, so the client is the connection's peer.
GNDP_TRUSTED_PROXIES = env_list("GNDP_TRUSTED_PROXIES", "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "login": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "gndp-login",
         "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}
        if REDIS_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "gndp-login"}
    ),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
