"""The folder tree is the architecture: imports only run downwards.

    benchmarks ─▶ workloads, replay ─▶ tracer ─▶ console ─▶ rabbit
                                 (web, tap ─▶ live ─▶ store ─▶ tracer's base)
                                 (web ─▶ export ─▶ store)

`rabbit/` (the doors to RabbitMQ) imports no app; `console/` imports no other
app except in the few modules that wire the project together, and those take
only the apps' own URL and WebSocket routes; inside `tracer/` the tap and the
web pages sit on live streaming, which sits on the store. Nothing imports the
benchmarks. Checked on the source (every import statement, at any depth), so a
back-arrow fails here before anyone depends on it.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rabbit", "console", "tracer", "replay", "workloads", "benchmarks")

# Which first-party packages each package may import (itself included).
ALLOWED = {
    "rabbit": {"rabbit"},
    "console": {"rabbit", "console"},
    "tracer": {"rabbit", "console", "tracer"},
    "replay": {"rabbit", "console", "tracer", "replay"},
    "workloads": {"rabbit", "console", "workloads"},
    "benchmarks": set(PACKAGES),
}

# console's wiring: the only modules of console that name other apps, and what they may take.
WIRING = {
    "console/routing.py": {"tracer.routing"},
    "console/urls.py": set(),  # include("tracer.urls") is a string, not an import
    "console/asgi.py": set(),
    "console/celery.py": set(),
    "console/settings.py": set(),
}

# Inside tracer: the base modules, then store < live < (tap, web); the app's
# entry points (urls, routing, tasks, the tap command) sit on top.
TRACER_BASE = {"tracer", "tracer.models", "tracer.times", "tracer.masking", "tracer.apps"}
TRACER_LAYERS = {
    "store": {"store"},
    "export": {"store", "export"},
    "live": {"store", "live"},
    "tap": {"store", "live", "tap"},
    "web": {"store", "live", "export", "web"},
}


def source_files():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def imported_modules(source):
    """Every first-party module an `import` or `from … import` names, at any depth:
    `from tracer.tap import reader` names tracer.tap.reader, `from tracer.models
    import Flow` names tracer.models."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.update(_module_or_parent(f"{node.module}.{alias.name}") for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _module_or_parent(name):
    path = ROOT.joinpath(*name.split("."))
    return name if path.with_suffix(".py").exists() or path.is_dir() else name.rpartition(".")[0]


def violations(path, imports):
    relative = path.relative_to(ROOT).as_posix()
    package = relative.split("/")[0]
    found = []
    for name in sorted(imports):
        target = name.split(".")[0]
        if target not in ALLOWED[package]:
            if relative in WIRING and name in WIRING[relative]:
                continue
            found.append(f"{relative} imports {name}")
        elif package == "tracer" == target:
            found.extend(_tracer_violation(relative, name))
    return found


def _tracer_violation(relative, name):
    parts = relative.removesuffix(".py").split("/")
    layer = parts[1] if len(parts) > 2 else None  # tracer/<layer>/module.py
    if layer not in TRACER_LAYERS or name in TRACER_BASE:
        return []  # the base and the app's entry points (commands too) may use every layer
    target_layer = name.split(".")[1] if name.count(".") >= 1 else None
    if target_layer in TRACER_LAYERS and target_layer not in TRACER_LAYERS[layer]:
        return [f"{relative} imports {name}"]
    return []


def test_it_finds_the_tree():
    files = list(source_files())
    assert len(files) > 100
    assert {path.relative_to(ROOT).parts[0] for path in files} == set(PACKAGES)


def test_it_keeps_every_import_pointing_downwards():
    found = []
    for path in source_files():
        found.extend(violations(path, imported_modules(path.read_text())))
    assert found == []


@pytest.mark.parametrize(
    ("where", "source", "expected"),
    [
        ("rabbit/management.py", "from console.models import Broker", "imports console.models"),
        ("console/queues.py", "from tracer.store import storage", "imports tracer.store.storage"),
        ("console/views/overview.py", "def f():\n    import tracer.models", "imports tracer"),
        ("console/routing.py", "from replay import urls", "imports replay.urls"),
        ("tracer/store/stats.py", "from tracer.web import latency", "imports tracer.web.latency"),
        ("tracer/live/rows.py", "from tracer.tap import decoding", "imports tracer.tap.decoding"),
        ("tracer/web/api.py", "from tracer.tap.process import Tap", "imports tracer.tap.process"),
        ("tracer/web/api.py", "from replay import jobs", "imports replay.jobs"),
        ("workloads/engine.py", "from tracer.models import Flow", "imports tracer.models"),
        ("replay/jobs.py", "from benchmarks import common", "imports benchmarks.common"),
    ],
)
def test_it_fails_on_a_back_arrow(where, source, expected):
    path = ROOT / where
    assert path.exists(), where
    found = violations(path, imported_modules(source))
    assert found and expected in found[0]


def test_it_allows_the_arrows_the_design_draws():
    allowed = [
        ("console/routing.py", "from tracer import routing"),
        ("tracer/web/api.py", "from tracer.store import stats"),
        ("tracer/tap/process.py", "from tracer.live import publish"),
        ("replay/engine.py", "from rabbit import replaying"),
        ("benchmarks/keepup.py", "from tracer.tap.reader import declare_tap_queue"),
    ]
    for where, source in allowed:
        found = violations(ROOT / where, imported_modules(source))
        assert found == [], (where, source, found)
