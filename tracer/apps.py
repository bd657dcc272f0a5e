from django.apps import AppConfig


class TracerConfig(AppConfig):
    name = "tracer"
    verbose_name = "Warren tracer"

    def ready(self) -> None:
        from tracer.store import services

        # A rule misspelt in WARREN_SERVICE_RULES stops the start with its reason.
        services.configured_rules()
