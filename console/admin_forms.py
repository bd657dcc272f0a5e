"""Forms of the administration pages: users, permissions, limits, vhosts, exchanges."""

import re
from typing import Any, cast

from django import forms

from console.administration import split_tags
from console.forms import parse_arguments

USER_TAGS = [
    ("administrator", "administrator — everything, management UI included"),
    ("monitoring", "monitoring — sees every connection, channel and node"),
    ("policymaker", "policymaker — may set policies and parameters"),
    ("management", "management — may use the management API for its vhosts"),
    ("impersonator", "impersonator — may forge the user-id of messages"),
]
KNOWN_TAGS = [tag for tag, _ in USER_TAGS]
QUEUE_TYPE_CHOICES = [
    ("", "broker default (classic)"),
    ("classic", "classic"),
    ("quorum", "quorum"),
    ("stream", "stream"),
]


def _regex(value: str, label: str) -> str:
    """A permission pattern: the broker reads it as a regular expression."""
    try:
        re.compile(value)
    except re.error as error:
        raise forms.ValidationError(
            f"{label} is not a valid regular expression: {error}."
        ) from None
    return value


def broker_name(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise forms.ValidationError(f"A {what} needs a name.")
    if len(value.encode()) > 255:
        raise forms.ValidationError("At most 255 bytes.")
    return value


class TagsMixin(forms.Form):
    tags = forms.MultipleChoiceField(
        choices=USER_TAGS, required=False, widget=forms.CheckboxSelectMultiple
    )
    other_tags = forms.CharField(
        required=False,
        max_length=500,
        label="Other tags",
        help_text="Separated by commas or spaces.",
    )

    def chosen_tags(self) -> list[str]:
        tags = list(self.cleaned_data.get("tags") or [])
        for tag in split_tags(self.cleaned_data.get("other_tags") or ""):
            if tag not in tags:
                tags.append(tag)
        return tags


class PasswordMixin(forms.Form):
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password_again = forms.CharField(
        required=False,
        strip=False,
        label="Password again",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


class UserCreateForm(TagsMixin, PasswordMixin):
    name = forms.CharField(max_length=255, label="Username")
    no_password = forms.BooleanField(
        required=False,
        label="No password (certificate or another mechanism only)",
    )

    field_order = ["name", "password", "password_again", "no_password", "tags", "other_tags"]

    def clean_name(self) -> str:
        return broker_name(self.cleaned_data["name"], "user")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("no_password") and not data.get("password"):
            self.add_error("password", "Give a password, or tick “No password”.")
        if data.get("no_password") and data.get("password"):
            self.add_error("no_password", "Either a password or no password, not both.")
        return data


class UserUpdateForm(TagsMixin, PasswordMixin):
    field_order = ["tags", "other_tags", "password", "password_again"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password"].label = "New password"
        self.fields["password"].help_text = "Empty: the password stays as it is."
        self.fields["password_again"].label = "New password again"


class PermissionForm(forms.Form):
    vhost = forms.ChoiceField(choices=[])
    configure = forms.CharField(initial=".*", required=False, max_length=1000)
    write = forms.CharField(initial=".*", required=False, max_length=1000)
    read = forms.CharField(initial=".*", required=False, max_length=1000)

    def __init__(self, *args: Any, vhosts: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["vhost"]).choices = [(v, v) for v in vhosts]

    def clean_configure(self) -> str:
        return _regex(self.cleaned_data["configure"], "Configure")

    def clean_write(self) -> str:
        return _regex(self.cleaned_data["write"], "Write")

    def clean_read(self) -> str:
        return _regex(self.cleaned_data["read"], "Read")


class TopicPermissionForm(forms.Form):
    vhost = forms.ChoiceField(choices=[])
    exchange = forms.CharField(initial="amq.topic", max_length=255)
    write = forms.CharField(initial=".*", required=False, max_length=1000)
    read = forms.CharField(initial=".*", required=False, max_length=1000)

    def __init__(self, *args: Any, vhosts: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["vhost"]).choices = [(v, v) for v in vhosts]

    def clean_write(self) -> str:
        return _regex(self.cleaned_data["write"], "Write")

    def clean_read(self) -> str:
        return _regex(self.cleaned_data["read"], "Read")


class UserLimitsForm(forms.Form):
    max_connections = forms.IntegerField(
        required=False, min_value=0, label="Max connections", help_text="Empty: no limit."
    )
    max_channels = forms.IntegerField(
        required=False, min_value=0, label="Max channels", help_text="Empty: no limit."
    )

    def limits(self) -> dict[str, int | None]:
        return {
            "max-connections": self.cleaned_data.get("max_connections"),
            "max-channels": self.cleaned_data.get("max_channels"),
        }


class VhostLimitsForm(forms.Form):
    max_connections = forms.IntegerField(
        required=False, min_value=0, label="Max connections", help_text="Empty: no limit."
    )
    max_queues = forms.IntegerField(
        required=False, min_value=0, label="Max queues", help_text="Empty: no limit."
    )

    def limits(self) -> dict[str, int | None]:
        return {
            "max-connections": self.cleaned_data.get("max_connections"),
            "max-queues": self.cleaned_data.get("max_queues"),
        }


class VhostForm(forms.Form):
    name = forms.CharField(max_length=255)
    description = forms.CharField(required=False, max_length=1000)
    tags = forms.CharField(required=False, max_length=500, help_text="Separated by commas.")
    default_queue_type = forms.ChoiceField(
        choices=QUEUE_TYPE_CHOICES, required=False, label="Default queue type"
    )
    grant_warren = forms.BooleanField(
        required=False,
        initial=True,
        label="Give Warren's own user full permissions here (to publish, move and trace)",
    )

    def clean_name(self) -> str:
        return broker_name(self.cleaned_data["name"], "vhost")


class ConfirmNameForm(forms.Form):
    """Deleting something big: the operator types its name."""

    confirm = forms.CharField(max_length=255, label="Type the name to confirm", strip=False)

    def __init__(self, *args: Any, expected: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"]
        if value != self.expected:
            raise forms.ValidationError(f"Type “{self.expected}” exactly to confirm.")
        return value


class ExchangeForm(forms.Form):
    vhost = forms.ChoiceField(choices=[])
    name = forms.CharField(max_length=255)
    type = forms.ChoiceField(choices=[])
    durable = forms.BooleanField(required=False, initial=True)
    auto_delete = forms.BooleanField(
        required=False, label="Auto-delete (once its last binding is removed)"
    )
    internal = forms.BooleanField(
        required=False, label="Internal (clients cannot publish to it, only other exchanges)"
    )
    alternate_exchange = forms.CharField(
        required=False,
        max_length=255,
        help_text="Where messages this exchange cannot route go.",
    )
    extra_arguments = forms.CharField(
        required=False,
        label="Extra arguments",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"x-delayed-type": "direct"}'}),
        help_text="Optional JSON object, for plugin exchange types and the like.",
    )

    def __init__(self, *args: Any, vhosts: list[str], types: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["vhost"]).choices = [(v, v) for v in vhosts]
        cast(forms.ChoiceField, self.fields["type"]).choices = [(t, t) for t in types]

    def clean_name(self) -> str:
        name = broker_name(self.cleaned_data["name"], "exchange")
        if name.startswith("amq."):
            raise forms.ValidationError("Names starting with “amq.” are reserved for the broker.")
        return name

    def clean_extra_arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = parse_arguments(self.cleaned_data["extra_arguments"])
        if "alternate-exchange" in arguments:
            raise forms.ValidationError("Set the alternate exchange in its own field.")
        return arguments

    def arguments(self) -> dict[str, Any]:
        arguments = dict(self.cleaned_data["extra_arguments"])
        if self.cleaned_data.get("alternate_exchange"):
            arguments["alternate-exchange"] = self.cleaned_data["alternate_exchange"]
        return arguments
