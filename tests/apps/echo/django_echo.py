"""Django, configured in code: the body as request.body reads it (for the query ZERO_FIRST: request.read(0), then
request.read(), as a view that reads the stream does)."""

import os

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="echo-app-for-tests-only",  # noqa: S106 - a test app with no sessions, cookies or data
    ALLOWED_HOSTS=os.environ.get("ALLOWED_HOSTS", "localhost").split(","),
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    # Read bodies of any size (default 2.5 MB): the tests send up to 8 MiB.
    DATA_UPLOAD_MAX_MEMORY_SIZE=None,
    USE_TZ=True,
)

from django.core.wsgi import get_wsgi_application  # noqa: E402 - after settings.configure()
from django.http import FileResponse, HttpResponse  # noqa: E402
from django.urls import re_path  # noqa: E402
from echo_core import ZERO_FIRST, report, served_file  # noqa: E402


def echo(request):
    if request.META.get("QUERY_STRING") == ZERO_FIRST:
        zero_read = request.read(0)
        return HttpResponse(report("django", request.META, request.read(), zero_read), content_type="application/json")
    return HttpResponse(report("django", request.META, request.body), content_type="application/json")


def file_from(request, offset):
    """Django's FileResponse of a file the view moved on to `offset` (its Content-Length counts from there)."""
    return FileResponse(served_file(int(offset)))


urlpatterns = [re_path(r"^file-from/(?P<offset>[0-9]+)$", file_from), re_path(r"", echo)]
application = get_wsgi_application()
