from django.apps import AppConfig


class ReplayConfig(AppConfig):
    name = "replay"
    verbose_name = "Warren replays"

    def ready(self) -> None:
        from replay import metrics
        from tracer.export import metrics as exported

        exported.register(metrics.collect)
