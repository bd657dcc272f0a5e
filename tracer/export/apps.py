from django.apps import AppConfig


class ExportConfig(AppConfig):
    name = "tracer.export"
    label = "export"
    verbose_name = "Warren export"

    def ready(self) -> None:
        from tracer.export import access

        # A malformed WARREN_METRICS_ALLOW stops the start with its reason.
        access.allowed_networks()
