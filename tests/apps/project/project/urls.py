from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import render
from django.urls import path


def home(request):
    # A table the migrations create: "no such table" (a 500) until PRESTART_CMD has run them.
    return render(request, "home.html", {"content_types": ContentType.objects.count()})


def upload(request, name):
    """The body, kept as a file in MEDIA_ROOT; the answer is the URL it is served at (no view here serves it)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    saved = default_storage.save(name, ContentFile(request.body))
    return JsonResponse({"url": default_storage.url(saved)}, status=201)


urlpatterns = [path("", home), path("upload/<str:name>", upload)]
