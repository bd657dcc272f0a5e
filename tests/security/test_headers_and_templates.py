"""Content-Security-Policy without inline code, and safe cookies and headers."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_it_sends_a_strict_content_security_policy(client, db):
    response = client.get(reverse("login"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def _template_files():
    return sorted(TEMPLATES.rglob("*.html"))


@pytest.mark.parametrize("template", _template_files(), ids=lambda p: p.name)
def test_it_keeps_templates_free_of_inline_code(template):
    text = template.read_text()
    inline_scripts = [tag for tag in re.findall(r"<script\b[^>]*>", text) if "src=" not in tag]
    assert inline_scripts == [], f"{template.name}: inline <script> is blocked by the CSP"
    assert not re.search(r"\sstyle\s*=", text), f"{template.name}: style= is blocked by the CSP"
    assert not re.search(r"\son[a-z]+\s*=", text), f"{template.name}: on*= handlers are inline code"
    assert "hx-on" not in text, f"{template.name}: hx-on needs eval, which the CSP forbids"


def test_it_marks_cookies_secure_behind_tls():
    import subprocess
    import sys

    code = (
        "import django, os;os.environ['DJANGO_SETTINGS_MODULE']='console.settings';"
        "django.setup();from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.DEBUG)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "WARREN_HTTPS": "true", "HOME": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.stdout.split() == ["True", "True", "31536000", "False"], result.stderr


def test_it_keeps_session_cookies_away_from_scripts(settings):
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"
