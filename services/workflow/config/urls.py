"""Route the admin site and the health endpoint."""

from django.contrib import admin
from django.urls import URLPattern, URLResolver, path
from workflows.views import health

urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
]
