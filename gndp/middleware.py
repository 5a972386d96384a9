from csp.constants import HEADER as CSP_HEADER
from csp.middleware import CSPMiddleware
from csp.utils import build_policy
from django.shortcuts import render

from gndp import db_faults
from processes.errors import ServiceError


class ServiceErrorPageMiddleware:
    """A refusal from a service, raised while rendering a page, becomes a page with the
    same status the API would give (404 for what the caller may not see), never a 500; a
    database that is gone, a 503 to try again later."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, ServiceError) and not request.path.startswith("/api/"):
            return render(request, "error.html", {"error": exception}, status=exception.status)
        if db_faults.is_transient(exception):
            # The database is gone or aborted the transaction: 503, try again, not a 500.
            return db_faults.unavailable_response(request.path, db_faults.error_code(exception))
        return None


class RejectNulBytesMiddleware:
    """A NUL byte in a URL or query string can never be valid text here, and PostgreSQL
    refuses it with an error: answer 400 before it reaches a query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            from django.http import HttpResponseBadRequest, JsonResponse

            if request.path.startswith("/api/"):
                body = {"error": {"code": "invalid", "message": "NUL bytes are not allowed", "details": {}}}
                return JsonResponse(body, status=400)
            return HttpResponseBadRequest("NUL bytes are not allowed")
        return self.get_response(request)


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every response a view produced (static files are served
    before this, by WhiteNoise): pages and API answers carry decrypted sensitive fields,
    names and task data, and no browser, proxy or shared cache may keep them. A response
    that chose its own Cache-Control (an attachment download) keeps it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response


# What a view may set on its response to change its policy (django-csp's decorators).
_CSP_OVERRIDES = ("_csp_exempt", "_csp_config", "_csp_update", "_csp_replace",
                  "_csp_exempt_ro", "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro")


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the settings' policy built once.

    django-csp builds the header anew for every response and prepares a nonce object for
    every request: 35 to 40 microseconds a request here, more than some of the API's own
    statements. No template uses a nonce, so a response the views left alone gets the
    policy string built at startup; one a decorator changed (the API docs page) goes
    through django-csp's own path."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self._policy = build_policy()

    def process_request(self, request):
        return None  # no nonces: every script is a file of this origin

    def process_response(self, request, response):
        if any(getattr(response, name, None) for name in _CSP_OVERRIDES):
            return super().process_response(request, response)
        if self._policy and CSP_HEADER not in response:
            response[CSP_HEADER] = self._policy
        return response
