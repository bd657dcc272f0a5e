"""Edits an operator makes to a message before replaying it: parsing and unmasking.

Pages show bodies and headers masked (tracer.masking). When the operator edits
a masked copy and leaves a mask where it was, the original value goes out
again — a replay must never send the mask itself. A mask left where no
original value exists is refused.
"""

import base64
import binascii
import json

from tracer.masking import MASK, mask_body, mask_properties

BODY_FORMATS = ("text", "json", "base64")


class EditError(ValueError):
    """An edit that cannot be used, in words for the form or the API."""


def restore_masks(edited, original):
    """`edited` with every MASK put back to the value at the same place in `original`."""
    if isinstance(edited, str) and edited == MASK:
        if original is None or original == MASK:
            raise EditError(
                f"'{MASK}' stands for a masked value, and there is no original value at "
                "that place to send instead: write the value you mean"
            )
        return original
    if isinstance(edited, dict):
        base = original if isinstance(original, dict) else {}
        return {key: restore_masks(value, base.get(key)) for key, value in edited.items()}
    if isinstance(edited, list):
        base = original if isinstance(original, list) else []
        return [
            restore_masks(value, base[index] if index < len(base) else None)
            for index, value in enumerate(edited)
        ]
    return edited


def masked_headers_text(headers):
    """The headers as the edit box shows them: masked, pretty JSON."""
    shown = mask_properties({"headers": headers or {}})["headers"]
    return json.dumps(shown, indent=2, ensure_ascii=False, sort_keys=True)


def parse_headers(text, original=None):
    """A header table from the edit box (a JSON object), masks put back; None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise EditError(f"Headers are not valid JSON: {error.msg} (line {error.lineno}).") from None
    if not isinstance(value, dict):
        raise EditError('Headers must be a JSON object, like {"x-tenant": "acme"}.')
    return restore_masks(value, original or {})


def body_as_text(body):
    """(text, format) for the edit box: text when UTF-8, base64 otherwise; masked."""
    shown = mask_body(bytes(body or b""))
    try:
        text = shown.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(shown).decode("ascii"), "base64"
    try:
        json.loads(text)
    except ValueError:
        return text, "text"
    return text, "json"


def parse_body(text, body_format, original=None):
    """The bytes to send for an edited body, validating JSON and putting masks back.

    An unedited masked body (the text exactly as shown) means the original.
    """
    if body_format not in BODY_FORMATS:
        raise EditError(f"Unknown body format {body_format!r}.")
    text = text if text is not None else ""
    if original is not None and text == body_as_text(original)[0]:
        return bytes(original)
    if body_format == "base64":
        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise EditError("The body is not valid base64.") from None
    if body_format == "json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise EditError(
                f"The body is not valid JSON: {error.msg} (line {error.lineno}, "
                f"column {error.colno})."
            ) from None
        if MASK in text:
            try:
                before = json.loads(bytes(original or b""))
            except ValueError:
                before = None
            value = restore_masks(value, before)
            return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        return text.encode("utf-8")
    if MASK in text:
        raise EditError(
            f"The body still contains '{MASK}' where a value was masked: replace it, or "
            "leave the body exactly as shown to send the original."
        )
    return text.encode("utf-8")
