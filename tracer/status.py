"""What the tap is doing, as /api/health and /api/tap/status tell it.

Filled in by the tracer; until a tap has run, it reports not running.
"""


def tap_health():
    return {"running": False}
