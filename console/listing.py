"""The state of a list page (page, size, filter, sort) kept in the URL.

The broker pages, filters and sorts its own lists (`page`, `page_size`, `name`,
`use_regex`, `sort`, `sort_reverse`), so a list page never loads more than one
page of objects, whatever the broker holds. A ListQuery reads that state from
the query string, checks it against the columns a page allows, and writes it
back into links (sort headers, pager, auto-refresh) so nothing is lost.
"""

import re
from dataclasses import dataclass, replace
from urllib.parse import urlencode

PAGE_SIZES = (20, 50, 100, 200, 500)
# Columns sorted A→Z on the first click; figures sort biggest first, since the
# question is usually "which queue is backing up".
TEXT_SORTS = {"name", "vhost", "type", "state", "policy", "user", "node", "client", "peer"}
DEFAULT_PAGE_SIZE = 50
MAX_PAGE = 100_000


def _int(value, default, lowest, highest):
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return default
    return min(max(number, lowest), highest)


def _flag(value):
    return str(value).lower() in ("1", "true", "on", "yes")


@dataclass(frozen=True)
class ListQuery:
    """One list page's state; `sorts` maps URL sort names to the broker's sort keys."""

    sorts: dict
    default_sort: str
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    name: str = ""
    regex: bool = False
    sort: str = ""
    reverse: bool = False
    default_reverse: bool = False

    @classmethod
    def from_params(cls, params, sorts, default_sort="name", default_reverse=False):
        sort = params.get("sort", "")
        if sort not in sorts:
            sort = default_sort
        reverse = _flag(params["desc"]) if "desc" in params else default_reverse
        page_size = _int(params.get("page_size"), DEFAULT_PAGE_SIZE, 1, PAGE_SIZES[-1])
        return cls(
            sorts=sorts,
            default_sort=default_sort,
            default_reverse=default_reverse,
            page=_int(params.get("page"), 1, 1, MAX_PAGE),
            page_size=page_size,
            name=params.get("name", "").strip()[:500],
            regex=_flag(params.get("regex", "")),
            sort=sort,
            reverse=reverse,
        )

    @property
    def regex_error(self):
        """Why the filter is not a usable regular expression, or ''.

        The broker answers a bad pattern with a bare 400; checking first lets
        the page say what is wrong. Python's syntax is close enough to
        Erlang's re (PCRE) for the common mistakes.
        """
        if not (self.regex and self.name):
            return ""
        try:
            re.compile(self.name)
        except re.error as error:
            return f"The filter is not a valid regular expression: {error}."
        return ""

    def api_paging(self):
        """Keyword arguments for ManagementClient.get_page."""
        return {
            "page": self.page,
            "page_size": self.page_size,
            "name": "" if self.regex_error else self.name,
            "use_regex": self.regex,
            "sort": self.sorts[self.sort],
            "sort_reverse": self.reverse,
        }

    def with_changes(self, **changes):
        return replace(self, **changes)

    def params(self, **changes):
        """Query parameters of this state (defaults left out), after changes."""
        state = replace(self, **changes) if changes else self
        params = {}
        if state.name:
            params["name"] = state.name
        if state.regex:
            params["regex"] = "1"
        if state.sort != state.default_sort:
            params["sort"] = state.sort
        if state.reverse != state.default_reverse:
            params["desc"] = "1" if state.reverse else "0"
        if state.page_size != DEFAULT_PAGE_SIZE:
            params["page_size"] = str(state.page_size)
        if state.page != 1:
            params["page"] = str(state.page)
        return params

    def query_string(self, extra=None, **changes):
        params = dict(extra or {})
        params.update(self.params(**changes))
        return "?" + urlencode(params) if params else "?"

    def sort_link(self, column, extra=None):
        """The query string a column header links to: sort by it, or flip it."""
        if column == self.sort:
            return self.query_string(extra, reverse=not self.reverse, page=1)
        return self.query_string(extra, sort=column, reverse=column not in TEXT_SORTS, page=1)

    def sort_headers(self, columns, extra=None):
        """{column: {"href", "active", "reverse"}} for the template's headers."""
        return {
            column: {
                "href": self.sort_link(column, extra),
                "active": column == self.sort,
                "reverse": self.reverse,
            }
            for column in columns
        }


@dataclass(frozen=True)
class Pager:
    page: int
    page_count: int
    filtered_count: int
    total_count: int
    first_index: int
    last_index: int
    previous_href: str
    next_href: str
    pages: list

    @property
    def has_other_pages(self):
        return self.page_count > 1


def pager(query, page, extra=None):
    """Pager figures and links for a broker Page shown under `query`."""
    first = (page.page - 1) * page.page_size + 1 if page.items else 0
    last = first + len(page.items) - 1 if page.items else 0
    nearby = sorted(
        {1, page.page_count, *range(max(1, page.page - 2), min(page.page_count, page.page + 2) + 1)}
    )
    pages = []
    for n in nearby:
        if n < 1:
            continue
        pages.append(
            {
                "number": n,
                "href": query.query_string(extra, page=n),
                "current": n == page.page,
                "gap_before": bool(pages) and pages[-1]["number"] != n - 1,
            }
        )
    return Pager(
        page=page.page,
        page_count=page.page_count,
        filtered_count=page.filtered_count,
        total_count=page.total_count,
        first_index=first,
        last_index=last,
        previous_href=query.query_string(extra, page=page.page - 1) if page.page > 1 else "",
        next_href=(
            query.query_string(extra, page=page.page + 1) if page.page < page.page_count else ""
        ),
        pages=pages,
    )


def fetch_page(list_call, query):
    """Ask the broker for the page `query` names; past the end, for the last page.

    The broker answers a page beyond the end with 400 `page_out_of_range`
    (a queue list shrinks while someone looks at page 40). Returns (page,
    query actually shown).
    """
    from rabbit.management_http import BrokerRejected

    try:
        return list_call(**query.api_paging()), query
    except BrokerRejected as error:
        if query.page == 1 or "out of range" not in error.message.lower():
            raise
    first = list_call(**query.with_changes(page=1).api_paging())
    last_page = max(1, first.page_count)
    if last_page == 1:
        return first, query.with_changes(page=1)
    shown = query.with_changes(page=last_page)
    return list_call(**shown.api_paging()), shown


def _dotted(item, key):
    value = item
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _sort_value(value):
    # Missing figures sort as the smallest; numbers before text never compare.
    if value is None:
        return (0, 0, "")
    if isinstance(value, bool | int | float):
        return (1, float(value), "")
    return (2, 0, str(value).lower())


def paginate_locally(items, query):
    """Filter, sort and page a list the broker cannot page itself, like the API would.

    The management API pages /api/connections but not a vhost's connections or
    channels; those lists are as long as one vhost's clients, so they are
    paged here with the same rules and the same Page result.
    """
    from rabbit.management_http import Page

    paging = query.api_paging()
    total = len(items)
    if paging["name"]:
        if paging["use_regex"]:
            pattern = re.compile(paging["name"], re.IGNORECASE)  # as the broker does
            items = [i for i in items if pattern.search(str(i.get("name", "")))]
        else:
            needle = paging["name"].lower()
            items = [i for i in items if needle in str(i.get("name", "")).lower()]
    items = sorted(
        items,
        key=lambda i: _sort_value(_dotted(i, paging["sort"])),
        reverse=paging["sort_reverse"],
    )
    size = paging["page_size"]
    page_count = max(1, -(-len(items) // size)) if items else 0
    page = min(paging["page"], max(1, page_count))
    return Page(
        items=items[(page - 1) * size : page * size],
        page=page,
        page_count=page_count,
        page_size=size,
        filtered_count=len(items),
        total_count=total,
    )
