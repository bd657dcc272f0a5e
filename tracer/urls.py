"""Tracer pages and JSON API routes."""

urlpatterns = []
