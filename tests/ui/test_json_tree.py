"""A JSON body as a collapsible tree: values escaped, deep levels closed, big ones refused."""

from tracer.web.json_tree import MAX_NODES, OPEN_DEPTH, json_tree


def test_it_escapes_keys_and_values():
    html = json_tree({"<b>k</b>": "</ul><script>alert(1)</script>", "q": 'say "hi"'})
    assert html is not None
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;/ul&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;say \\&quot;hi\\&quot;&quot;" in html  # JSON's own escape kept


def test_it_writes_every_kind_of_value():
    html = json_tree({"n": 3.5, "t": True, "f": False, "z": None, "l": [1], "e": {}, "a": []})
    assert '<span class="json-num">3.5</span>' in html
    assert '<span class="json-bool">true</span>' in html
    assert '<span class="json-bool">false</span>' in html
    assert '<span class="json-null">null</span>' in html
    assert "{}</li>" in html and "[]</li>" in html
    assert '<span class="json-count">7 keys</span>' in html
    assert '<span class="json-count">1 item</span>' in html


def test_it_opens_the_first_levels_and_closes_deeper_ones():
    deep: object = "leaf"
    for _ in range(OPEN_DEPTH + 2):
        deep = {"x": deep}
    html = json_tree(deep)
    assert html.count("<details open>") == OPEN_DEPTH
    assert html.count("<details>") == 2


def test_it_refuses_a_tree_too_big_to_draw():
    assert json_tree(list(range(MAX_NODES))) is None
    assert json_tree(list(range(MAX_NODES - 10))) is not None
