"""Root URL configuration. Each area keeps its routes in its own module."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotate import views

admin.site.site_header = "Attune administration"
admin.site.site_title = "Attune"

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # Annotator screens and the researcher dashboard.
    path("", include("annotate.web_urls")),
    # Model runs: start, cancel, resume, watch.
    path("", include("annotate.run_urls")),
    # API (DRF): session or token auth; documented by the OpenAPI schema.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("annotate.api_urls")),
    path("api/", include("personalization.urls")),
]
