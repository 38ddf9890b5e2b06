"""Route the helpdesk URLs: the admin site and the health endpoint."""

from django.contrib import admin
from django.urls import path
from helpdesk.views import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
]
