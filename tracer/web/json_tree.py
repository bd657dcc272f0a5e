"""A JSON body as a tree of <details> elements: pretty, collapsible without any
script, every key and value escaped (format_html/escape), never markup."""

import orjson
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

# Past this many values the body is shown as indented text instead: a tree of
# tens of thousands of nodes would make the page slow to open.
MAX_NODES = 3000
# Objects and arrays deeper than this start closed.
OPEN_DEPTH = 3
# Fixed markup, no value in it (format_html without arguments is deprecated).
NULL_HTML = mark_safe('<span class="json-null">null</span>')
NO_LABEL = mark_safe("")


class _TooBig(Exception):
    pass


def _quoted(text: object) -> str:
    """A string as JSON writes it (quotes, \\n, \\"), to be escaped for HTML after."""
    return orjson.dumps(str(text)).decode()


def _scalar(value: object) -> SafeString:
    if value is None:
        return NULL_HTML
    if isinstance(value, bool):
        return format_html('<span class="json-bool">{}</span>', "true" if value else "false")
    if isinstance(value, int | float):
        return format_html('<span class="json-num">{}</span>', value)
    return format_html('<span class="json-str">{}</span>', _quoted(value))


def _key(key: object, in_array: bool) -> SafeString:
    if in_array:
        return format_html('<span class="json-index">{}</span>', key)
    return format_html('<span class="json-key">{}</span>', _quoted(key))


def _node(
    key: object | None, value: object, depth: int, in_array: bool, budget: list[int]
) -> SafeString:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig
    label = NO_LABEL if key is None else format_html("{}: ", _key(key, in_array))
    if not isinstance(value, dict | list):
        return format_html("<li>{}{}</li>", label, _scalar(value))
    is_list = isinstance(value, list)
    items: list[tuple[object, object]] = (
        list(enumerate(value)) if isinstance(value, list) else list(value.items())
    )
    opening, closing = ("[", "]") if is_list else ("{", "}")
    if not items:
        return format_html("<li>{}{}{}</li>", label, opening, closing)
    count = f"{len(items)} item{'s' if len(items) != 1 else ''}"
    if not is_list:
        count = f"{len(items)} key{'s' if len(items) != 1 else ''}"
    children = format_html_join(
        "", "{}", ((_node(k, v, depth + 1, is_list, budget),) for k, v in items)
    )
    return format_html(
        '<li><details{}><summary>{}{} <span class="json-count">{}</span></summary>'
        '<ul>{}</ul><span class="json-close">{}</span></details></li>',
        " open" if depth < OPEN_DEPTH else "",
        label,
        opening,
        count,
        children,
        closing,
    )


def json_tree(value: object) -> SafeString | None:
    """The tree's HTML, or None when the value has more than MAX_NODES values."""
    try:
        inner = _node(None, value, 0, False, [MAX_NODES])
    except (_TooBig, RecursionError):
        return None
    return format_html('<ul class="json-tree">{}</ul>', inner)
