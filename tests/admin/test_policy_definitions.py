"""Policy definitions: keys per apply-to, values per key, every problem said at once."""

from console.policy_definitions import apply_to_choices, keys_for, parse_rows, validate


def test_it_offers_typed_apply_to_only_from_3_12():
    assert apply_to_choices("3.10.8", operator=False) == ["queues", "exchanges", "all"]
    assert apply_to_choices("3.13.1", operator=False) == [
        "queues",
        "classic_queues",
        "quorum_queues",
        "streams",
        "exchanges",
        "all",
    ]
    assert apply_to_choices("3.10.8", operator=True) == ["queues"]


def test_it_accepts_a_good_definition():
    definition, problems = parse_rows(
        [("max-length", "1000"), ("overflow", "reject-publish"), ("", ""), ("message-ttl", "60000")]
    )
    assert problems == []
    assert definition == {"max-length": 1000, "overflow": "reject-publish", "message-ttl": 60000}
    assert validate(definition, "queues", operator=False) == []


def test_it_says_every_problem_in_words():
    definition = {
        "max-length": "many",
        "alternate-exchange": "ae",
        "overflow": "explode",
        "no-such-key": 1,
    }
    problems = validate(definition, "queues", operator=False)
    assert "max-length: a whole number, not 'many'." in problems
    assert "alternate-exchange: applies to exchanges, not to queues (every type)." in problems
    assert (
        "overflow: one of drop-head, reject-publish, reject-publish-dlx, not “explode”." in problems
    )
    assert any(p.startswith("no-such-key: not a policy key for queues") for p in problems)
    assert len(problems) == 4


def test_it_checks_keys_against_the_queue_type_on_newer_brokers():
    problems = validate({"delivery-limit": 3}, "classic_queues", False, "3.13.0")
    assert problems == ["delivery-limit: applies to quorum, not to classic queues."]
    assert validate({"max-age": "7D"}, "streams", False, "3.13.0") == []
    assert validate({"max-age": "a week"}, "streams", False, "3.13.0") == [
        "max-age: a number and a unit (Y, M, D, h, m, s), e.g. 7D, not “a week”."
    ]


def test_it_refuses_an_apply_to_the_broker_lacks():
    assert validate({"max-length": 1}, "streams", False, "3.10.8") == [
        "Apply to: “streams” is not one this broker takes (queues, exchanges, all)."
    ]


def test_it_limits_operator_policies_to_their_keys():
    problems = validate({"dead-letter-exchange": "dlx", "max-length": 10}, "queues", operator=True)
    assert len(problems) == 1
    assert problems[0].startswith("dead-letter-exchange: an operator policy may set only")
    assert "dead-letter-exchange" not in [k.key for k in keys_for("queues", operator=True)]


def test_it_checks_combinations():
    assert "ha-params: ha-mode exactly needs ha-params." in validate(
        {"ha-mode": "exactly"}, "queues", False
    )
    definition, problems = parse_rows([("ha-mode", "nodes"), ("ha-params", "rabbit@a, rabbit@b")])
    assert definition["ha-params"] == ["rabbit@a", "rabbit@b"]
    assert validate(definition, "queues", False) == []
    assert validate({"dead-letter-routing-key": "k"}, "queues", False) == [
        "dead-letter-routing-key: needs a dead-letter-exchange too."
    ]


def test_it_reports_rows_that_cannot_be_read():
    _definition, problems = parse_rows(
        [("max-length", "ten"), ("", "orphan"), ("expires", "1"), ("expires", "2"), ("bogus", "1")]
    )
    assert problems == [
        "max-length: “ten” is not a whole number.",
        "A value (“orphan”) has no key.",
        "expires: set twice.",
        "bogus: not a policy key Warren knows.",
    ]


def test_it_refuses_an_empty_definition():
    assert validate({}, "queues", False) == ["Definition: set at least one key."]
