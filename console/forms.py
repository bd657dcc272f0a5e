"""Forms of the broker console: operator actions, brokers, the audit filter."""

import base64
import binascii
import json
from urllib.parse import urlsplit

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.text import slugify

from console.models import AuditEntry, Broker
from rabbit.brokers import DEFAULT_SLUG

MOVE_MAX = 10_000


def parse_headers(text):
    """Headers from a JSON object, or from `name: value` lines (values as text)."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(f"The headers are not valid JSON: {error}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The headers must be a JSON object.")
        return value
    headers = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        # `name: value` or `name = value`, whichever separator comes first.
        cuts = [i for i in (line.find(":"), line.find("=")) if i > 0]
        if not cuts:
            raise forms.ValidationError(
                f"Header line {number} is not `name: value` (or use a JSON object)."
            )
        name, value = line[: min(cuts)], line[min(cuts) + 1 :]
        if not name.strip():
            raise forms.ValidationError(
                f"Header line {number} is not `name: value` (or use a JSON object)."
            )
        headers[name.strip()] = value.strip()
    return headers


def parse_arguments(text):
    """Binding arguments: an optional JSON object."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise forms.ValidationError(f"The arguments are not valid JSON: {error}.") from None
    if not isinstance(value, dict):
        raise forms.ValidationError("The arguments must be a JSON object.")
    return value


class PublishForm(forms.Form):
    """A message to publish; the exchange comes from the URL the form posts to."""

    routing_key = forms.CharField(required=False, max_length=255)
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 8}), strip=False)
    body_encoding = forms.ChoiceField(
        choices=[("text", "Text (UTF-8)"), ("base64", "Base64 (binary)")], initial="text"
    )
    headers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "name: value  — or a JSON object"}),
    )
    delivery_mode = forms.TypedChoiceField(
        choices=[(2, "2 · persistent"), (1, "1 · transient")], coerce=int, initial=2
    )
    content_type = forms.CharField(required=False, max_length=255)
    content_encoding = forms.CharField(required=False, max_length=255)
    correlation_id = forms.CharField(required=False, max_length=255)
    reply_to = forms.CharField(required=False, max_length=255)
    message_id = forms.CharField(required=False, max_length=255)
    type = forms.CharField(required=False, max_length=255)
    app_id = forms.CharField(required=False, max_length=255)
    expiration = forms.CharField(
        required=False, max_length=20, help_text="Per-message TTL in milliseconds."
    )
    priority = forms.IntegerField(
        required=False, validators=[MinValueValidator(0), MaxValueValidator(255)]
    )
    stamp = forms.BooleanField(required=False, initial=True, label="Set timestamp to now")
    mandatory = forms.BooleanField(
        required=False, initial=True, label="Mandatory (report a message no queue takes)"
    )

    def clean_expiration(self):
        value = self.cleaned_data["expiration"].strip()
        if value and not value.isdigit():
            raise forms.ValidationError("Expiration is a whole number of milliseconds.")
        return value

    def clean_headers(self):
        return parse_headers(self.cleaned_data["headers"])

    def clean(self):
        data = super().clean()
        if data.get("body_encoding") == "base64":
            try:
                data["body_bytes"] = base64.b64decode(data.get("body", ""), validate=True)
            except (binascii.Error, ValueError):
                self.add_error("body", "The body is not valid base64.")
        else:
            data["body_bytes"] = (data.get("body") or "").encode("utf-8")
        return data

    def properties(self):
        """Basic properties (pika's names) from the cleaned form."""
        data = self.cleaned_data
        fields = {"delivery_mode": data["delivery_mode"]}
        for name in (
            "content_type",
            "content_encoding",
            "correlation_id",
            "reply_to",
            "message_id",
            "type",
            "app_id",
            "expiration",
        ):
            if data.get(name):
                fields[name] = data[name]
        if data.get("priority") is not None:
            fields["priority"] = data["priority"]
        if data.get("headers"):
            fields["headers"] = data["headers"]
        return fields


class BindForm(forms.Form):
    """A binding from an exchange to a queue or another exchange."""

    source = forms.CharField(max_length=255, label="From exchange")
    destination_type = forms.ChoiceField(
        choices=[("q", "queue"), ("e", "exchange")], initial="q", label="To a"
    )
    destination = forms.CharField(max_length=255, label="Named")
    routing_key = forms.CharField(required=False, max_length=255)
    arguments = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": '{"x-match": "all"}'}),
        help_text="Optional JSON object (headers exchanges match on these).",
    )

    def clean_source(self):
        source = self.cleaned_data["source"]
        if source == "" or source == "amq.default":
            raise forms.ValidationError("The default exchange cannot be bound explicitly.")
        return source

    def clean_arguments(self):
        return parse_arguments(self.cleaned_data["arguments"])


class UnbindForm(forms.Form):
    source = forms.CharField(max_length=255)
    destination_type = forms.ChoiceField(choices=[("q", "queue"), ("e", "exchange")])
    destination = forms.CharField(max_length=255)
    properties_key = forms.CharField(max_length=1000, required=False)
    routing_key = forms.CharField(max_length=255, required=False)


class DeleteQueueForm(forms.Form):
    if_empty = forms.BooleanField(required=False, label="only if empty")
    if_unused = forms.BooleanField(required=False, label="only if no consumers")


class DeleteExchangeForm(forms.Form):
    if_unused = forms.BooleanField(required=False, label="only if it has no bindings")


class MoveForm(forms.Form):
    MODES = [
        ("queue", "to the queue named below"),
        ("x-death-queue", "back to the queue each message died in (x-death)"),
        ("x-death-route", "re-routed by its original exchange and routing key (x-death)"),
    ]
    mode = forms.ChoiceField(choices=MODES, initial="queue", widget=forms.RadioSelect)
    target = forms.CharField(required=False, max_length=255, label="Target queue")
    limit = forms.IntegerField(
        required=False,
        validators=[MinValueValidator(1), MaxValueValidator(MOVE_MAX)],
        help_text=f"Empty: every message there now (at most {MOVE_MAX:,}).",
    )

    def __init__(self, *args, source=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.source = source

    def clean(self):
        data = super().clean()
        if data.get("mode") == "queue":
            target = data.get("target") or ""
            if not target:
                self.add_error("target", "Name the queue to move the messages to.")
            elif target == self.source:
                self.add_error("target", "The target is the source queue itself.")
        return data

    def move_arguments(self):
        """Keyword arguments for rabbit.moving.move_messages."""
        data = self.cleaned_data
        mode = data["mode"]
        return {
            "target_queue": data["target"] if mode == "queue" else None,
            "x_death": {"x-death-queue": "queue", "x-death-route": "route"}.get(mode),
            "limit": data.get("limit") or MOVE_MAX,
        }


class CloseConnectionForm(forms.Form):
    reason = forms.CharField(
        required=False, max_length=200, initial="Closed by an operator in Warren"
    )


class BrokerForm(forms.ModelForm):
    """Add or edit a broker. The password is never sent back to the browser."""

    management_url = forms.CharField(
        max_length=500,
        label="Management URL",
        help_text="e.g. http://rabbit-2.internal:15672/",
    )
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the stored password.",
    )

    class Meta:
        model = Broker
        fields = ["name", "slug", "management_url", "amqp_url", "username", "password"]
        labels = {
            "management_url": "Management URL",
            "amqp_url": "AMQP URL",
            "slug": "Short name (in URLs)",
        }
        help_texts = {
            "management_url": "e.g. http://rabbit-2.internal:15672/",
            "amqp_url": "e.g. amqp://rabbit-2.internal:5672/%2F — without user or password.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False
        if self.instance.pk is None:
            self.fields["password"].help_text = "Stored on the server, never shown again."

    def clean_slug(self):
        slug = self.cleaned_data.get("slug") or slugify(self.cleaned_data.get("name", ""))
        slug = slug[:60]
        if not slug:
            raise forms.ValidationError("Give the broker a short name of letters and digits.")
        if slug == DEFAULT_SLUG:
            raise forms.ValidationError("'default' is the environment's broker.")
        clash = Broker.objects.filter(slug=slug).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("Another broker already has this short name.")
        return slug

    def clean_management_url(self):
        # Not Django's URLValidator: it refuses one-word host names such as
        # http://rabbit-2:15672/, which is how brokers are often reached inside.
        url = self.cleaned_data["management_url"].strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise forms.ValidationError(
                "A management URL starts with http:// or https:// and a host."
            )
        if parts.username or parts.password:
            raise forms.ValidationError(
                "Leave user and password out of the URL; they go in their own fields."
            )
        return url

    def _get_validation_exclusions(self):
        # The model's URLField validator would refuse the one-word hosts that
        # clean_management_url accepts.
        exclusions = super()._get_validation_exclusions()
        exclusions.add("management_url")
        return exclusions

    def clean_amqp_url(self):
        url = self.cleaned_data["amqp_url"].strip()
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise forms.ValidationError("An AMQP URL starts with amqp:// or amqps:// and a host.")
        if parts.username or parts.password:
            raise forms.ValidationError(
                "Leave user and password out of the URL; they go in their own fields."
            )
        return url

    def clean_password(self):
        password = self.cleaned_data.get("password") or ""
        if not password:
            if self.instance.pk is None:
                raise forms.ValidationError("A new broker needs a password.")
            return self.instance.password
        return password


class AuditFilterForm(forms.Form):
    user = forms.CharField(required=False, max_length=150)
    vhost = forms.CharField(required=False, max_length=255)
    action = forms.ChoiceField(required=False)
    result = forms.ChoiceField(required=False, choices=[("", "any")] + AuditEntry.RESULTS)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, max_length=200, label="Target or detail contains")

    def __init__(self, *args, actions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "any")] + [(a, a) for a in actions]

    def filter(self, entries):
        """The entries matching the valid fields (invalid ones are ignored)."""
        from datetime import datetime, time, timedelta

        from django.db.models import Q
        from django.utils import timezone

        self.is_valid()  # cleaned_data then holds the fields that are valid
        data = self.cleaned_data
        if data.get("user"):
            entries = entries.filter(username__iexact=data["user"])
        if data.get("vhost"):
            entries = entries.filter(vhost=data["vhost"])
        if data.get("action"):
            entries = entries.filter(action=data["action"])
        if data.get("result"):
            entries = entries.filter(result=data["result"])
        if data.get("since"):
            start = datetime.combine(
                data["since"], time.min, tzinfo=timezone.get_current_timezone()
            )
            entries = entries.filter(at__gte=start)
        if data.get("until"):
            end = datetime.combine(
                data["until"] + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone()
            )
            entries = entries.filter(at__lt=end)
        if data.get("q"):
            entries = entries.filter(
                Q(target__icontains=data["q"]) | Q(detail__icontains=data["q"])
            )
        return entries
