"""Where an audit entry's subject can be seen: a replay job's page for replay entries.

The audit log records words (console must not import the replay app), so the job
is found by the number the entry names: "job #12" in the detail of a started
replay, "replay #12" in the target of a cancel, resume or send.
"""

import re

from django.urls import NoReverseMatch, reverse

from console.models import AuditEntry

_REPLAY_JOB = re.compile(r"\b(?:job|replay) #(\d{1,18})\b")


def related_url(entry: AuditEntry) -> str | None:
    """The page of the replay job the entry is about, or None."""
    if not entry.action.startswith("replay"):
        return None
    found = _REPLAY_JOB.search(entry.target) or _REPLAY_JOB.search(entry.detail)
    if found is None:
        return None
    try:
        return reverse("replay", args=[int(found.group(1))])
    except NoReverseMatch:  # a deployment without the replay app
        return None
