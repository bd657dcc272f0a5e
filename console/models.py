"""What the console itself stores: extra brokers, API tokens and the audit log."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "wrn_"  # noqa: S105 - a marker, not a secret


class Broker(models.Model):
    """A further broker (or cluster) added in the console.

    The broker from the environment is not stored: it is the default, named
    "default" (see console.brokers).
    """

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    management_url = models.URLField(max_length=500)
    amqp_url = models.CharField(max_length=500, help_text="Without the password.")
    username = models.CharField(max_length=200)
    # Never rendered back to a page; forms leave it blank to keep it.
    password = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def user_for(self, token):
        """The active user owning this bearer token, or None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        match = (
            self.select_related("user")
            .filter(token_hash=hash_token(token), user__is_active=True)
            .first()
        )
        if match is None:
            return None
        ApiToken.objects.filter(pk=match.pk).update(last_used_at=timezone.now())
        return match.user


class ApiToken(models.Model):
    """A bearer token for the JSON API. Only its hash is kept."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    def __str__(self):
        return f"token of {self.user} created {self.created_at:%Y-%m-%d}"

    @classmethod
    def issue(cls, user):
        """A new token for user; the clear text exists only in the return value."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        cls.objects.create(user=user, token_hash=hash_token(token))
        return token


class AuditEntry(models.Model):
    """Who did (or tried to do) what, where, when, and how it ended."""

    OK = "ok"
    FAILED = "failed"
    DENIED = "denied"
    RESULTS = [(OK, "ok"), (FAILED, "failed"), (DENIED, "denied")]

    at = models.DateTimeField(default=timezone.now, db_index=True)
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=60, db_index=True)
    broker = models.CharField(max_length=60, blank=True)
    vhost = models.CharField(max_length=255, blank=True)
    target = models.CharField(max_length=1000, blank=True)
    result = models.CharField(max_length=10, choices=RESULTS, default=OK)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.result}"

    @classmethod
    def record(cls, request_or_user, action, result=OK, broker="", vhost="", target="", detail=""):
        user = getattr(request_or_user, "user", request_or_user)
        if user is not request_or_user:
            # console.access records a change its view left unrecorded; this one is recorded.
            request_or_user.warren_audited = True
        username = getattr(user, "username", "") or "anonymous"
        return cls.objects.create(
            username=username,
            action=action,
            broker=broker,
            vhost=vhost,
            target=str(target)[:1000],
            result=result,
            detail=str(detail),
        )
