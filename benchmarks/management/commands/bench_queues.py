"""Benchmark the Queues page against the broker's own /api/queues at 10,000 queues.

    python manage.py bench_queues [--queues 10000] [--loads 9] [--page-size 50]

Creates a scratch vhost, declares the queues over one AMQP channel, then for a
few typical views of the Queues page (first page by name, biggest first,
a regex filter) measures the page's server time (the whole Django stack, via
the test client, median of several loads) next to the management API call
that the page makes for the same page of results, and the same call without
`columns` (what the broker's own UI asks for). Prints both and their ratio,
then deletes the vhost. Nothing is left behind: the temporary login exists
only inside a transaction that is rolled back.
"""

import statistics
import time
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test import Client, override_settings
from django.urls import reverse

from console.queues import QUEUE_COLUMNS, QUEUE_SORTS
from rabbit import amqp
from rabbit.brokers import default_broker
from rabbit.management_http import BrokerError, BrokerNotFound

SCENARIOS = [
    ("first page, by name", {"sort": "name"}),
    ("biggest first", {"sort": "messages", "desc": "1"}),
    ("regex filter", {"name": r"^bench-0*1\d{2}$", "regex": "1"}),
]


class _Rollback(Exception):
    pass


def _timings_ms(actions, loads):
    """Milliseconds of each load of each action, run in turn so that a busy moment of
    the machine weighs on all of them alike."""
    for action in actions:
        action()  # warm-up: connections, template cache
    timings = [[] for _ in actions]
    for _ in range(loads):
        for action, spent in zip(actions, timings, strict=True):
            started = time.perf_counter()
            action()
            spent.append((time.perf_counter() - started) * 1000)
    return timings


class Command(BaseCommand):
    help = "Time the Queues page against the bare management API call at 10,000 queues."

    def add_arguments(self, parser):
        parser.add_argument("--queues", type=int, default=10_000)
        parser.add_argument("--loads", type=int, default=9, help="page loads per figure")
        parser.add_argument("--page-size", type=int, default=50)

    def handle(self, *args, **options):
        count, loads, page_size = options["queues"], options["loads"], options["page_size"]
        if not 1 <= count <= 50_000 or not 1 <= loads <= 50:
            raise CommandError("--queues must be 1..50000 and --loads 1..50")
        broker = default_broker()
        client = broker.client(timeout=60)
        vhost = f"warren-queues-bench-{uuid.uuid4().hex[:8]}"
        try:
            client.create_vhost(vhost, description="Warren bench_queues scratch vhost")
        except BrokerError as error:
            raise CommandError(f"Cannot create the scratch vhost: {error.message}") from None
        try:
            self._declare(broker, vhost, count)
            self._wait_for_stats(client, vhost, count)
            rows = self._measure(client, vhost, loads, page_size)
        except (BrokerError, amqp.AMQPError) as error:
            words = (getattr(error, "message", None) or str(error)).rstrip(".")
            raise CommandError(
                f"The run broke off: {words}. Was the broker restarted or the vhost deleted?"
            ) from None
        finally:
            self._delete(client, vhost)
        self._report(rows, count, loads, page_size)

    def _delete(self, client, vhost):
        """Remove the scratch vhost, riding out a broker that is briefly away."""
        self.stdout.write(f"Deleting vhost {vhost} …")
        deadline = time.monotonic() + 60
        while True:
            try:
                client.delete_vhost(vhost)
                return
            except BrokerNotFound:
                return  # already gone
            except BrokerError as error:
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"Could not delete vhost {vhost}: {error.message} Delete it by hand."
                    ) from None
                time.sleep(2)

    def _declare(self, broker, vhost, count):
        started = time.perf_counter()
        connection = amqp.blocking_connection(broker.amqp_url(), vhost=vhost, name="warren-bench")
        try:
            channel = connection.channel()
            for number in range(count):
                channel.queue_declare(f"bench-{number:05d}", durable=False)
                if number % 7 == 0:
                    channel.basic_publish("", f"bench-{number:05d}", b"x" * (number % 50))
        finally:
            connection.close()
        self.stdout.write(
            f"Declared {count:,} queues in {time.perf_counter() - started:.1f} s "
            f"(one in seven holds a message)."
        )

    def _wait_for_stats(self, client, vhost, count):
        """The list is complete at once; figures follow on the next statistics round."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            page = client.queues_page(
                vhost,
                page=1,
                page_size=1,
                sort="messages",
                sort_reverse=True,
                columns=["name", "messages"],
            )
            if page.total_count == count and page.items and page.items[0].get("messages"):
                return
            time.sleep(1)
        raise CommandError("The broker did not list every queue with figures within 2 minutes.")

    def _measure(self, client, vhost, loads, page_size):
        from django.contrib.auth.models import User

        rows = []
        # Signed-cookie sessions and a login that is rolled back: the bench
        # writes nothing that outlives it.
        with override_settings(
            SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
            ALLOWED_HOSTS=["testserver"],
        ):
            try:
                with transaction.atomic():
                    user = User.objects.create_superuser(f"bench-{uuid.uuid4().hex[:8]}")
                    web = Client()
                    web.force_login(user)
                    for label, params in SCENARIOS:
                        rows.append(
                            self._retried(
                                self._scenario, web, client, vhost, label, params, loads, page_size
                            )
                        )
                    raise _Rollback
            except _Rollback:
                pass
        return rows

    def _retried(self, measure, *args):
        """A dropped keep-alive connection or a broker hiccup costs a retry, not the run."""
        for attempt in range(3):
            try:
                return measure(*args)
            except (BrokerError, CommandError) as error:
                if attempt == 2:
                    raise
                self.stdout.write(f"  retrying {args[3]!r} after: {error}")
                time.sleep(3)

    def _scenario(self, web, client, vhost, label, params, loads, page_size):
        query = {"vhost": vhost, "page_size": str(page_size), **params}
        url = reverse("queues")

        def load_page():
            response = web.get(url, query)
            if response.status_code != 200 or b"banner-error" in response.content:
                raise CommandError(f"The Queues page failed for {label!r}.")

        paging = {
            "page": 1,
            "page_size": page_size,
            "name": params.get("name", ""),
            "use_regex": params.get("regex") == "1",
            "sort": QUEUE_SORTS[params.get("sort", "name")],
            "sort_reverse": params.get("desc") == "1",
        }
        same_call = lambda: client.queues_page(vhost, columns=QUEUE_COLUMNS, **paging)  # noqa: E731
        full_rows = lambda: client.queues_page(vhost, **paging)  # noqa: E731
        shown = len(same_call().items)
        page, api, api_full = _timings_ms([load_page, same_call, full_rows], loads)
        return {
            "label": label,
            "rows": shown,
            "page_ms": statistics.median(page),
            "api_ms": statistics.median(api),
            "api_full_ms": statistics.median(api_full),
            "page_best": min(page),
            "api_best": min(api),
            # Each page load next to the API call made right after it: the median of
            # these pairs is the figure least moved by other work on the machine.
            "paired": statistics.median(p / a for p, a in zip(page, api, strict=True)),
        }

    def _report(self, rows, count, loads, page_size):
        self.stdout.write("")
        self.stdout.write(
            f"Queues page vs. the broker's /api/queues, {count:,} queues, page size "
            f"{page_size}, {loads} loads each (ms):"
        )
        self.stdout.write(
            f"{'view':<21}{'rows':>5}{'page median':>13}{'API median':>12}{'ratio':>8}"
            f"{'paired':>8}{'page best':>11}{'API best':>10}{'API all cols':>14}"
        )
        for row in rows:
            ratio = row["page_ms"] / row["api_ms"]
            self.stdout.write(
                f"{row['label']:<21}{row['rows']:>5}{row['page_ms']:>13.1f}{row['api_ms']:>12.1f}"
                f"{ratio:>7.2f}×{row['paired']:>7.2f}×{row['page_best']:>11.1f}"
                f"{row['api_best']:>10.1f}{row['api_full_ms']:>14.1f}"
            )
        worst = max(r["page_ms"] / r["api_ms"] for r in rows)
        verdict = "within" if worst <= 1.2 else "OVER"
        self.stdout.write(
            f"Worst ratio of medians {worst:.2f}× — {verdict} the 1.2× goal. "
            "'paired' is the median of each page load over the API call made right after it; "
            "'API all cols' is the same call without columns=, as the broker's own UI asks."
        )
