"""Out into the tools teams already run: Prometheus metrics, OpenTelemetry spans,
and export and import files (docs/architecture.md, Export).

A Django app of its own (label `export`) inside the tracer: it sits on the store
and keeps its own tables — the running totals behind /metrics, the positions of
its readers of settled flows, and what was imported.
"""
