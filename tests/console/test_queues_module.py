"""Queue rows and details from the management API's answers, including sparse ones."""

from console.queues import consumer, dead_letter_target, features, queue_detail, queue_row


def test_it_reads_a_queue_the_broker_has_no_figures_for_yet():
    row = queue_row({"name": "new", "vhost": "/", "arguments": {}})
    assert row.stats_pending and row.messages is None and row.state == "starting"
    assert row.utilisation is None and not row.backing_up


def test_it_flags_a_queue_with_ready_messages_and_no_consumer():
    row = queue_row(
        {"name": "q", "messages": 5, "messages_ready": 5, "consumers": 0, "consumer_utilisation": 0}
    )
    assert row.backing_up and row.utilisation_percent is None


def test_it_reads_settings_from_arguments_before_policies():
    queue = {
        "durable": True,
        "arguments": {"x-dead-letter-exchange": "dlx", "x-message-ttl": 60000},
        "effective_policy_definition": {
            "dead-letter-exchange": "policy-dlx",
            "max-length": 10,
            "overflow": "reject-publish",
        },
    }
    labels = [label for label, _ in features(queue)]
    assert labels == ["D", "DLX", "TTL 1m", "Lim 10"]
    target = dead_letter_target(queue)
    assert (target.exchange, target.routing_key, target.source) == ("dlx", None, "argument")
    only_policy = dead_letter_target(
        {
            "effective_policy_definition": {
                "dead-letter-exchange": "",
                "dead-letter-routing-key": "parking",
            }
        }
    )
    assert (only_policy.exchange, only_policy.routing_key, only_policy.source) == (
        "",
        "parking",
        "policy",
    )


def test_it_reads_internal_consumers_without_a_channel():
    internal = consumer({"consumer_tag": "shovel", "channel_details": [], "queue": {"name": "q"}})
    assert (internal.connection, internal.queue, internal.prefetch) == ("", "q", 0)


def test_it_builds_a_detail_with_quorum_members_and_no_samples():
    detail = queue_detail(
        {
            "name": "qq",
            "type": "quorum",
            "leader": "rabbit@a",
            "members": ["rabbit@a", "rabbit@b"],
            "online": ["rabbit@a"],
        }
    )
    assert detail.row.node == "rabbit@a" and detail.members == ["rabbit@a", "rabbit@b"]
