from django.contrib.contenttypes.models import ContentType
from django.shortcuts import render
from django.urls import path


def home(request):
    # A table the migrations create: "no such table" (a 500) until PRESTART_CMD has run them.
    return render(request, "home.html", {"content_types": ContentType.objects.count()})


urlpatterns = [path("", home)]
