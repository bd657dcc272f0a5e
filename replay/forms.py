"""The replay form: what the page asks, checked, turned into a ReplaySpec.

Which messages are chosen travels in the page's query string (`?message=`,
`?flow=`, the Messages search parameters, or `?dead_letters=<queue>&vhost=`),
so a "Replay…" link anywhere in Warren only has to point here.
"""

from django import forms
from django.conf import settings

from console.brokers import all_brokers
from replay import edits, selection
from replay.spec import MAX_RATE, MAX_REPLY_TIMEOUT_S, MAX_SPEED, VOLATILE_FIELDS, ReplaySpec

KEEP_DROP = [("keep", "Keep the original"), ("drop", "Drop it")]


def spec_source(query):
    """The source part of a spec from a query string (QueryDict), or None."""
    spec = ReplaySpec()
    if _listed(query, "message"):
        spec.message_ids = _listed(query, "message")
    elif _listed(query, "flow") and not _other_filters(query):
        # ?flow= alone (the Flow page): that flow's request. With other Messages
        # search parameters it is one more filter (the messages of that flow).
        spec.flow_ids = _listed(query, "flow")
    elif query.get("dead_letters"):
        spec.dead_letters = {
            "vhost": query.get("vhost", "/"),
            "queue": query["dead_letters"],
            "from": "peek" if query.get("from") == "peek" else "captured",
            "how": "route" if query.get("how") == "route" else "queue",
            "count": _positive(query.get("count")),
        }
    else:
        filters = {
            name: query[name] for name in selection.FILTER_FIELDS if query.get(name, "") != ""
        }
        if not filters:
            return None
        spec.filter = filters
    return spec


def _listed(query, name):
    """Repeated parameters and comma-separated ones alike: ?message=1&message=2, ?message=1,2."""
    return [
        part.strip() for value in query.getlist(name) for part in value.split(",") if part.strip()
    ]


def _other_filters(query):
    return any(query.get(name) for name in selection.FILTER_FIELDS if name != "flow")


def _positive(value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


class ReplayForm(forms.Form):
    target = forms.ChoiceField(
        choices=[
            ("original", "The original exchange and routing key"),
            ("exchange", "Another exchange and routing key"),
            ("queue", "Straight to a queue (default exchange)"),
        ],
        initial="original",
        required=False,
        widget=forms.RadioSelect,
    )
    redrive_how = forms.ChoiceField(
        choices=[
            ("queue", "Back to the queue each message died in"),
            ("route", "Through the exchange and routing key each was first published with"),
        ],
        initial="queue",
        required=False,
        widget=forms.RadioSelect,
    )
    broker = forms.ChoiceField(required=False)
    vhost = forms.CharField(required=False, strip=False, max_length=255)
    exchange = forms.CharField(required=False, strip=False, max_length=255)
    routing_key = forms.CharField(required=False, strip=False, max_length=255)
    queue = forms.CharField(required=False, strip=False, max_length=255)

    body_mode = forms.ChoiceField(
        choices=[("keep", "Send the captured body"), ("replace", "Send this body instead")],
        initial="keep",
        required=False,
        widget=forms.RadioSelect,
    )
    body_format = forms.ChoiceField(
        choices=[("text", "Text (UTF-8)"), ("json", "JSON (validated)"), ("base64", "Base64")],
        initial="text",
    )
    body_text = forms.CharField(required=False, strip=False, widget=forms.Textarea)
    headers_mode = forms.ChoiceField(
        choices=[("keep", "Keep the captured headers"), ("edit", "Edit them")],
        initial="keep",
        required=False,
        widget=forms.RadioSelect,
    )
    headers_text = forms.CharField(required=False, widget=forms.Textarea)
    keep_message_id = forms.ChoiceField(choices=KEEP_DROP, widget=forms.RadioSelect)
    keep_timestamp = forms.ChoiceField(choices=KEEP_DROP, widget=forms.RadioSelect)
    allow_truncated = forms.BooleanField(required=False)

    rate_per_s = forms.FloatField(required=False, min_value=0.001, max_value=MAX_RATE)
    keep_timing = forms.BooleanField(required=False)
    speed = forms.FloatField(required=False, min_value=0.001, max_value=MAX_SPEED, initial=1.0)
    await_reply = forms.BooleanField(required=False)
    reply_timeout_s = forms.FloatField(required=False, min_value=0.1, max_value=MAX_REPLY_TIMEOUT_S)
    ignore_fields = forms.CharField(
        required=False, max_length=1000, initial=", ".join(VOLATILE_FIELDS)
    )
    dry_run = forms.BooleanField(required=False)
    confirm_count = forms.IntegerField(required=False)

    def __init__(self, *args, chosen=None, single=None, **kwargs):
        """`chosen`: the Selection; `single`: the Message when exactly one is chosen."""
        super().__init__(*args, **kwargs)
        self.chosen = chosen
        self.single = single
        self._redrive = bool(chosen is not None and chosen.kind == "dead_letters")
        self.fields["broker"].choices = [("", "The broker it was captured on")] + [
            (broker.slug, broker.name) for broker in all_brokers()[1:]
        ]
        self.fields["reply_timeout_s"].initial = min(settings.WARREN_RPC_TIMEOUT, 30.0)
        self.fields["keep_message_id"].initial = "keep"
        self.fields["keep_timestamp"].initial = "keep"
        if single is not None:
            text, body_format = edits.body_as_text(single.body)
            self.fields["body_text"].initial = text
            self.fields["body_format"].initial = body_format
            headers = (single.properties or {}).get("headers") or {}
            self.fields["headers_text"].initial = edits.masked_headers_text(headers)

    @property
    def needs_confirmation(self):
        total = self.chosen.total if self.chosen else 0
        return total > settings.WARREN_REPLAY_CONFIRM_ABOVE

    def clean(self):
        data = super().clean()
        target = data.get("target")
        if target == "queue" and not data.get("queue") and not self._redrive:
            self.add_error("queue", "Name the queue to send to.")
        if data.get("body_mode") == "replace" and "body_text" in data:
            original = bytes(self.single.body) if self.single is not None else None
            try:
                data["body"] = edits.parse_body(
                    data["body_text"], data.get("body_format", "text"), original
                )
            except edits.EditError as error:
                self.add_error("body_text", str(error))
        if data.get("headers_mode") == "edit":
            original = None
            if self.single is not None:
                original = (self.single.properties or {}).get("headers") or {}
            try:
                data["headers"] = edits.parse_headers(data.get("headers_text"), original)
            except edits.EditError as error:
                self.add_error("headers_text", str(error))
        if data.get("keep_timing") and not data.get("speed"):
            data["speed"] = 1.0
        cut = self.chosen.truncated if self.chosen is not None else 0
        if cut and not data.get("allow_truncated") and data.get("body_mode") != "replace":
            self.add_error(
                "allow_truncated",
                f"{cut:,} captured bodies were cut at {settings.WARREN_BODY_LIMIT:,} bytes: "
                "tick this to send them cut anyway, or replace the body.",
            )
        unconfirmed = data.get("confirm_count") != (self.chosen.total if self.chosen else 0)
        if self.needs_confirmation and not data.get("dry_run") and unconfirmed:
            self.add_error(
                "confirm_count",
                f"Type {self.chosen.total} to confirm: all {self.chosen.total:,} messages go out.",
            )
        return data

    def to_spec(self, source):
        """The ReplaySpec: `source` (from spec_source) plus this form's choices."""
        data = self.cleaned_data
        spec = source
        spec.broker = data.get("broker") or ""
        spec.vhost = data.get("vhost") or None
        if spec.dead_letters:
            spec.dead_letters["how"] = data.get("redrive_how") or "queue"
        elif data.get("target") == "exchange":
            spec.exchange = data.get("exchange") or ""
            spec.routing_key = data.get("routing_key") or ""
        elif data.get("target") == "queue":
            spec.exchange = ""
            spec.routing_key = data["queue"]
        if data.get("body_mode") == "replace":
            spec.body = data.get("body")
        if data.get("headers_mode") == "edit":
            headers = data.get("headers")
            # One message: the box holds its whole header table. Many: headers to set.
            spec.headers = headers if headers is not None else {}
            spec.headers_replace = self.single is not None
        spec.keep_message_id = data["keep_message_id"] == "keep"
        spec.keep_timestamp = data["keep_timestamp"] == "keep"
        spec.allow_truncated = bool(data.get("allow_truncated"))
        spec.rate_per_s = data.get("rate_per_s")
        spec.keep_timing = bool(data.get("keep_timing"))
        spec.speed = data.get("speed") or 1.0
        spec.await_reply = bool(data.get("await_reply"))
        if data.get("reply_timeout_s"):
            spec.reply_timeout_s = data["reply_timeout_s"]
        spec.ignore_fields = [
            name.strip() for name in (data.get("ignore_fields") or "").split(",") if name.strip()
        ][:50]
        spec.dry_run = bool(data.get("dry_run"))
        spec.confirm = True  # checked by clean() against the count shown
        return spec
