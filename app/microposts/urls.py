from django.contrib import admin
from django.urls import include, path

from . import api, views

urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/users/<str:username>/collection", api.UserCollection.as_view(), name="user-collection"),
    path("api/users/<str:username>/collection/<int:pk>", api.UserMicropost.as_view(), name="micropost-detail"),
    # Session login and logout for the browsable API.
    path("api-auth/", include("rest_framework.urls")),
]

handler404 = "microposts.views.not_found"
