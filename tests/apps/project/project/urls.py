import magic
import psycopg
import psycopg2
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import render
from django.urls import path


def home(request):
    # A table the migrations create: "no such table" (a 500) until PRESTART_CMD has run them.
    context = {
        "content_types": ContentType.objects.count(),
        "libpq": psycopg2.__libpq_version__,
        "psycopg": f"{psycopg.pq.__impl__} {psycopg.pq.version()}",
    }
    return render(request, "home.html", context)


def upload(request, name):
    """The body, kept as a file in MEDIA_ROOT; the answer is the URL it is served at (no view here serves it) and the
    type libmagic finds in it."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    saved = default_storage.save(name, ContentFile(request.body))
    found = magic.from_buffer(request.body[:2048], mime=True)
    return JsonResponse({"url": default_storage.url(saved), "type": found}, status=201)


urlpatterns = [path("", home), path("upload/<str:name>", upload)]
