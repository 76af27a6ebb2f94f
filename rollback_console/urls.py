from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView

from rollback_console import health, metrics

# Django's account pages without the password reset flow, which stays off unless PASSWORD_RESET_ENABLED says
# otherwise: it mails whoever names an address a way in.
accounts: list[URLPattern | URLResolver] = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
]
if settings.PASSWORD_RESET_ENABLED:
    accounts = [path("", include("django.contrib.auth.urls"))]

urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False)),
    path("admin/", admin.site.urls),
    path("accounts/", include(accounts)),
    path("console/", include("console.urls")),
    path("api/v1/", include("rollback_console.api_urls")),
    path("demo-shop/", include("demo_shop.urls")),
    # Operations (the contract): probes for orchestrators and Prometheus, outside the API and its throttles.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
]

handler404 = "rollback_console.api_errors.not_found"
