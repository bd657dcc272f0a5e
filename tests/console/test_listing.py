"""List state in the URL: parsing, links that keep it, and paging lists the broker cannot."""

from console.listing import ListQuery, pager, paginate_locally
from console.queues import QUEUE_SORTS, list_query
from rabbit.management_http import Page


def test_it_reads_page_size_sort_and_filter_from_the_query_string():
    query = list_query(
        {
            "page": "3",
            "page_size": "20",
            "name": "^dlq",
            "regex": "1",
            "sort": "messages",
            "desc": "1",
        }
    )
    assert query.api_paging() == {
        "page": 3,
        "page_size": 20,
        "name": "^dlq",
        "use_regex": True,
        "sort": "messages",
        "sort_reverse": True,
    }


def test_it_ignores_unknown_sorts_and_clamps_numbers():
    query = list_query({"page": "-4", "page_size": "100000", "sort": "drop table"})
    assert query.page == 1
    assert query.page_size == 500
    assert query.sort == "name"


def test_it_flips_the_active_sort_and_sorts_figures_biggest_first():
    query = list_query({"sort": "name"})
    assert "desc=1" in query.sort_link("name")
    assert "sort=messages" in query.sort_link("messages") and "desc=1" in query.sort_link(
        "messages"
    )
    assert "desc" not in query.sort_link("vhost")


def test_it_keeps_filter_and_vhost_in_every_link():
    query = list_query({"name": "orders", "page_size": "20", "sort": "ready", "desc": "1"})
    link = query.query_string({"vhost": "a/b"}, page=2)
    assert link == "?vhost=a%2Fb&name=orders&sort=ready&desc=1&page_size=20&page=2"


def test_it_reports_a_bad_regular_expression_before_asking_the_broker():
    query = list_query({"name": "(unclosed", "regex": "1"})
    assert "not a valid regular expression" in query.regex_error
    assert query.api_paging()["name"] == ""
    assert list_query({"name": "(unclosed"}).regex_error == ""


def test_it_builds_a_pager_with_gaps():
    query = list_query({"page": "10"})
    page = Page(
        items=[{}] * 50, page=10, page_count=40, page_size=50, filtered_count=2000, total_count=2500
    )
    numbers = [p["number"] for p in pager(query, page).pages]
    assert numbers == [1, 8, 9, 10, 11, 12, 40]
    result = pager(query, page)
    assert (result.first_index, result.last_index) == (451, 500)
    assert "page=9" in result.previous_href and "page=11" in result.next_href


def test_it_pages_a_list_locally_like_the_broker():
    items = [{"name": f"conn-{i}", "channels": i % 3} for i in range(7)]
    query = ListQuery.from_params(
        {"sort": "channels", "desc": "1", "page_size": "3", "name": "CONN", "page": "2"},
        {"name": "name", "channels": "channels"},
    )
    page = paginate_locally(items, query)
    assert page.filtered_count == 7 and page.page_count == 3 and page.page == 2
    assert [i["channels"] for i in page.items] == [1, 0, 0]
    regex = ListQuery.from_params({"name": "-[56]$", "regex": "1"}, {"name": "name"})
    assert [i["name"] for i in paginate_locally(items, regex).items] == ["conn-5", "conn-6"]


def test_it_knows_every_sort_the_page_offers():
    assert set(QUEUE_SORTS) >= {"name", "messages", "ready", "unacked", "publish", "consumers"}
