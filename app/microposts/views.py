"""The default app's pages: a home page, health probes and its own 404."""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from . import __version__

APP_NAME = "microposts"


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "microposts/index.html", {"name": APP_NAME, "version": __version__})


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches nothing else, so a slow database never gets it restarted.

    Public, so it names no version (docs/operations.md: Versions): that is in the image labels and `make versions`."""
    return JsonResponse({"status": "ok", "app": APP_NAME})


@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers and every migration is applied."""
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001 - any database failure means "not ready", with its class as the reason
        return JsonResponse({"status": "unavailable", "reason": type(exc).__name__}, status=503)
    if pending:
        return JsonResponse(
            {"status": "unavailable", "reason": "migrations pending", "pending": len(pending)}, status=503
        )
    return JsonResponse({"status": "ok"})


def not_found(request: HttpRequest, exception: Exception) -> JsonResponse:
    return JsonResponse({"status": 404, "error": "not found", "app": APP_NAME}, status=404)
