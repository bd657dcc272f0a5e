"""Seed workload 4: weather (and news and sports) farms behind the `amq.topic` exchange.

Clients ask `amq.topic` with routing keys such as `weather.ohio` or
`news.virginia`. Each state has a farm of servers on one queue bound `#.<state>`;
a sports daemon bound `sports.#` answers every sports question too, so a
`sports.ohio` request gets TWO replies (Ohio's farm and the sports daemon), the
duplicate-reply case Warren counts.
"""

import json
import random

from rabbit import amqp
from workloads.engine import (
    Actor,
    Client,
    Plan,
    dump,
    new_id,
    now_iso,
    run_forever_plan,
    service_name,
)
from workloads.ledger import CallRecord

EXCHANGE = "amq.topic"
STATES = ("ohio", "virginia")
SPORTS_QUEUE = "sports_daemon"
KEYS = (
    "weather.ohio",
    "news.virginia",
    "sports.ohio",
    "weather.virginia",
    "news.ohio",
    "sports.virginia",
)
FORECASTS = ("sunny", "showers", "overcast", "thunderstorms", "snow flurries", "fog")
HEADLINES = (
    "County fair opens on Saturday",
    "Bridge repairs finish ahead of schedule",
    "Library extends weekend hours",
    "New bike lanes downtown",
)
TEAMS = ("Hawks", "Otters", "Miners", "Comets", "Pioneers", "Rivermen")


def farm_queue(state):
    return f"weather_farm.{state}"


BINDINGS = [(farm_queue(state), f"#.{state}") for state in STATES] + [(SPORTS_QUEUE, "sports.#")]


def topic_matches(pattern, key):
    """AMQP topic matching: `*` is one word, `#` zero or more."""

    def match(p, k):
        if not p:
            return not k
        if p[0] == "#":
            return any(match(p[1:], k[i:]) for i in range(len(k) + 1))
        if not k:
            return False
        return (p[0] == "*" or p[0] == k[0]) and match(p[1:], k[1:])

    return match(pattern.split("."), key.split("."))


def expected_replies(key):
    return sum(1 for _queue, pattern in BINDINGS if topic_matches(pattern, key))


class StateFarmServer(Actor):
    prefetch = 5

    def __init__(self, context, label, state):
        super().__init__(context, label)
        self.state = state
        self.random = random.Random()

    def setup(self):
        self.serve(farm_queue(self.state), self.on_request)

    def answer(self, topic, request):
        r = self.random
        answer = {"farm": self.state, "topic": topic, "server": self.connection_name}
        if topic == "weather":
            low = r.randint(20, 70)
            answer.update(forecast=r.choice(FORECASTS), low_f=low, high_f=low + r.randint(5, 25))
        elif topic == "news":
            answer.update(headlines=r.sample(HEADLINES, 2))
        else:
            answer.update(note=f"local {topic} desk for {self.state}: see the {topic} service")
        return answer

    def on_request(self, channel, method, properties, body):
        request = json.loads(body)
        topic = method.routing_key.split(".", 1)[0]
        answer = self.answer(topic, request)
        answer.update(request=request.get("request"), answered_at=now_iso())
        self.reply(properties, dump(answer))
        channel.basic_ack(delivery_tag=method.delivery_tag)


class SportsDaemon(StateFarmServer):
    def __init__(self, context, label):
        super().__init__(context, label, state=None)

    def setup(self):
        self.serve(SPORTS_QUEUE, self.on_request)

    def answer(self, topic, request):
        home, away = self.random.sample(TEAMS, 2)
        return {
            "source": "sports daemon",
            "server": self.connection_name,
            "state": request.get("state"),
            "scores": [
                {
                    "home": home,
                    "away": away,
                    "score": f"{self.random.randint(0, 5)}-{self.random.randint(0, 5)}",
                }
            ],
        }


class WeatherClient(Client):
    def __init__(self, context, label, ledger, keys=KEYS, **kw):
        super().__init__(context, label, ledger, **kw)
        self.keys = tuple(keys)
        self.callback_queue = None

    def setup(self):
        declared = self.channel.queue_declare(queue="", exclusive=True)
        self.callback_queue = declared.method.queue
        self.channel.basic_consume(
            queue=self.callback_queue, on_message_callback=self.on_reply, auto_ack=True
        )

    def on_reply(self, channel, method, properties, body):
        self.ledger.replied(properties.correlation_id, body, thread=self.label)

    def call(self, index):
        key = self.keys[index % len(self.keys)]
        topic, _, state = key.partition(".")
        correlation_id = new_id()
        body = dump({"topic": topic, "state": state, "request": index, "asked_at": now_iso()})
        record = CallRecord(
            correlation_id=correlation_id,
            reply_to=self.callback_queue,
            service=service_name(EXCHANGE, key),
            request_body=body,
        )
        self.ledger.sent(correlation_id, record, expected=expected_replies(key))
        self.channel.basic_publish(
            exchange=EXCHANGE,
            routing_key=key,
            properties=amqp.properties(
                correlation_id=correlation_id,
                reply_to=self.callback_queue,
                content_type="application/json",
            ),
            body=body,
        )


def declare(channel):
    for queue, pattern in BINDINGS:
        channel.queue_declare(queue=queue)
        channel.queue_bind(queue=queue, exchange=EXCHANGE, routing_key=pattern)


def plan(context, ledger, calls=None, rate=None, farm_size=2, keys=KEYS):
    servers = [
        StateFarmServer(context, f"weather farm {state} server {i}", state)
        for state in STATES
        for i in range(1, farm_size + 1)
    ]
    servers.append(SportsDaemon(context, "sports daemon"))
    return Plan(
        name="weather",
        declare=declare,
        servers=servers,
        clients=[
            WeatherClient(context, "weather client", ledger, keys=keys, calls=calls, rate=rate)
        ],
        queues=[queue for queue, _pattern in BINDINGS],
    )


def run_forever(amqp_url, vhost, rate, stop_event, **options):
    run_forever_plan(plan, amqp_url, vhost, rate, stop_event, **options)
