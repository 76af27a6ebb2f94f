from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False)),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("console/", include("console.urls")),
    path("api/v1/", include("rollback_console.api_urls")),
    path("demo-shop/", include("demo_shop.urls")),
]

handler404 = "rollback_console.api_errors.not_found"
