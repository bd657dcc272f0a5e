from django.urls import include, path

from console.views import auth, health, overview

urlpatterns = [
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("", overview.overview, name="overview"),
    path("api/health", health.health, name="api_health"),
    path("", include("tracer.urls")),
]
