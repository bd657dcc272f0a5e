"""python manage.py bench_load — many people at once on pages, the API and live streams.

Starts Daphne and the tap (on a scratch vhost it creates and deletes) with the
Fibonacci RPC workload flowing, then for --seconds runs --clients concurrent
HTTP clients going round the pages and the JSON API, and --sockets WebSocket
subscribers on the live streams. Prints the error count (goal 0), page and
API times (p50/p95/max), what the subscribers received, and the tap's queue
depth and lag meanwhile. Loopback only; bounded; not part of the test suite.
"""

import asyncio
import json
import secrets
import threading
import time
from urllib.parse import quote

from django.core.management.base import BaseCommand, CommandError

PAGES = [
    "/",
    "/queues/",
    "/exchanges/",
    "/connections/",
    "/messages/",
    "/flows/",
    "/latency/",
    "/live/",
    "/replays/",
]
API = [
    "/api/messages?limit=50",
    "/api/flows?limit=50",
    "/api/flows/stats",
    "/api/tap/status",
    "/api/health",
    "/latency/data.json",
]
STREAMS = ["/ws/flows/", "/ws/messages/"]


def _percentile(values, p):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Tally:
    def __init__(self):
        self.times = {"page": [], "api": []}
        self.by_path = {}
        self.errors = []
        self.frames = 0
        self.sockets_closed_early = 0
        self.tap = []  # (seconds, queue_depth, lag_ms, stored)

    def error(self, what):
        if len(self.errors) < 1000:
            self.errors.append(what)


async def _http_client(number, base, cookie, token, vhost, until, tally):
    import httpx

    paths = [("page", p) for p in PAGES] + [("api", p) for p in API]
    paths = paths[number % len(paths) :] + paths[: number % len(paths)]
    headers = {"Cookie": cookie}
    async with httpx.AsyncClient(base_url=base, timeout=30.0, headers=headers) as client:
        index = 0
        while time.monotonic() < until:
            kind, path = paths[index % len(paths)]
            index += 1
            extra = {"Authorization": f"Bearer {token}"} if kind == "api" else {}
            started = time.monotonic()
            try:
                response = await client.get(path, headers=extra)
            except httpx.HTTPError as error:
                tally.error(f"{path}: {type(error).__name__}")
                continue
            elapsed = time.monotonic() - started
            tally.times[kind].append(elapsed)
            tally.by_path.setdefault(path, []).append(elapsed)
            if response.status_code != 200:
                tally.error(f"{path}: HTTP {response.status_code}")


async def _subscriber(number, base, cookie, vhost, until, tally):
    from websockets.asyncio.client import connect

    path = STREAMS[number % len(STREAMS)]
    url = base.replace("http://", "ws://") + path
    try:
        async with connect(
            url, additional_headers={"Cookie": cookie, "Origin": base}, open_timeout=10
        ) as socket:
            await socket.send(json.dumps({"type": "subscribe", "filters": {"vhost": vhost}}))
            while time.monotonic() < until:
                try:
                    await asyncio.wait_for(
                        socket.recv(), timeout=max(0.1, until - time.monotonic())
                    )
                except TimeoutError:
                    break
                tally.frames += 1
    except Exception as error:  # noqa: BLE001 - counted, the run goes on
        tally.sockets_closed_early += 1
        tally.error(f"{path}: {type(error).__name__}: {error}"[:200])


async def _tap_watch(base, token, started, until, tally):
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
        while time.monotonic() < until:
            try:
                status = (
                    await client.get(
                        "/api/tap/status", headers={"Authorization": f"Bearer {token}"}
                    )
                ).json()
                tally.tap.append(
                    (
                        time.monotonic() - started,
                        status.get("queue_depth", 0),
                        status.get("lag_ms", 0.0),
                        status.get("stored", 0),
                    )
                )
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(2.0)


async def _run(base, cookie, token, vhost, clients, sockets, seconds, tally):
    started = time.monotonic()
    until = started + seconds
    tasks = [_http_client(n, base, cookie, token, vhost, until, tally) for n in range(clients)]
    tasks += [_subscriber(n, base, cookie, vhost, until, tally) for n in range(sockets)]
    tasks.append(_tap_watch(base, token, started, until, tally))
    await asyncio.gather(*tasks)


class Command(BaseCommand):
    help = "Pages, API and live streams under many concurrent users (loopback only, ~90 s)."

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=50)
        parser.add_argument("--sockets", type=int, default=20)
        parser.add_argument("--seconds", type=float, default=60.0)
        parser.add_argument("--rate", type=float, default=10.0, help="workload calls per second")

    def handle(self, *args, **options):
        clients, sockets, seconds = options["clients"], options["sockets"], options["seconds"]
        if not (1 <= clients <= 200 and 0 <= sockets <= 100 and 1 <= seconds <= 300):
            raise CommandError("Bounded: 1-200 clients, 0-100 sockets, 1-300 seconds.")
        from django.conf import settings
        from django.contrib.auth.models import User

        from benchmarks.live import check_loopback, start_server, start_tap
        from console.models import ApiToken
        from workloads.runner import WORKLOADS

        try:
            broker = check_loopback()
        except RuntimeError as error:
            raise CommandError(str(error)) from error
        mgmt = broker.client()
        vhost = f"warren-bench-{secrets.token_hex(4)}"
        user = User.objects.create_superuser(f"warren-bench-{secrets.token_hex(4)}", None, None)
        token = ApiToken.issue(user)
        mgmt.create_vhost(vhost, description="Warren load benchmark (temporary)")
        children, stop_load, tally = [], threading.Event(), Tally()
        workload = None
        try:
            self.stdout.write(f"scratch vhost {vhost}; starting Daphne and the tap…")
            server, base = start_server()
            children.append(server)
            children.append(start_tap([vhost]))
            from django.test import Client

            login = Client()
            login.force_login(user)
            session = login.cookies[settings.SESSION_COOKIE_NAME].value
            cookie = f"{settings.SESSION_COOKIE_NAME}={session}"
            workload = threading.Thread(
                target=WORKLOADS["fibonacci"].run_forever,
                args=(broker.amqp_url(), vhost, options["rate"], stop_load),
                daemon=True,
            )
            workload.start()
            time.sleep(2.0)
            self.stdout.write(
                f"{clients} HTTP clients and {sockets} WebSocket subscribers for {seconds:.0f} s, "
                f"Fibonacci RPC at {options['rate']:g} calls/s in the scratch vhost…"
            )
            asyncio.run(_run(base, cookie, token, vhost, clients, sockets, seconds, tally))
        finally:
            if tally.errors and children:
                self.stderr.write("the server's log, last lines:\n" + children[0].output()[-2500:])
            stop_load.set()
            if workload is not None:
                workload.join(30)
            for child in reversed(children):
                child.stop()
            try:
                mgmt.set_tracing(vhost, False)
                mgmt.delete_vhost(vhost)
            except Exception as error:  # noqa: BLE001 - reported, the run is over
                self.stderr.write(f"could not delete vhost {vhost}: {error}")
            user.delete()
        self._report(tally, seconds, quote(vhost, safe=""))

    def _report(self, tally, seconds, vhost):
        pages, api = tally.times["page"], tally.times["api"]
        requests = len(pages) + len(api) + len(tally.errors)

        def figures(times):
            return (
                f"{len(times)} requests, p50 {_percentile(times, 50) * 1000:,.0f} ms, "
                f"p95 {_percentile(times, 95) * 1000:,.0f} ms, "
                f"max {max(times, default=0) * 1000:,.0f} ms"
            )

        self.stdout.write(f"requests: {requests} in {seconds:.0f} s ({requests / seconds:.1f}/s)")
        self.stdout.write(f"errors: {len(tally.errors)} (goal 0)")
        for error in sorted(set(tally.errors))[:10]:
            self.stdout.write(f"  {error} ×{tally.errors.count(error)}")
        self.stdout.write(f"pages: {figures(pages)}")
        self.stdout.write(f"API: {figures(api)}")
        slowest = sorted(tally.by_path.items(), key=lambda item: -_percentile(item[1], 95))[:4]
        self.stdout.write(
            "slowest p95: "
            + ", ".join(f"{path} {_percentile(t, 95) * 1000:,.0f} ms" for path, t in slowest)
        )
        self.stdout.write(
            f"live: {tally.frames} frames to the subscribers, "
            f"{tally.sockets_closed_early} closed early"
        )
        if tally.tap:
            depths = [depth for _, depth, _, _ in tally.tap]
            lags = [lag for _, _, lag, _ in tally.tap]
            stored = tally.tap[-1][3] - tally.tap[0][3]
            span = max(tally.tap[-1][0] - tally.tap[0][0], 1)
            self.stdout.write(
                f"tap meanwhile: queue depth max {max(depths)} (last {depths[-1]}), "
                f"lag max {max(lags):,.0f} ms (last {lags[-1]:,.0f} ms), "
                f"{stored / span:,.0f} events/s stored"
            )
        ok = not tally.errors
        self.stdout.write(self.style.SUCCESS("no errors") if ok else self.style.WARNING("errors"))
