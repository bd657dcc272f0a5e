"""RPC clients and servers written the way third-party libraries and frameworks do it
(aio-pika, Celery, kombu, Node's amqplib, a reply-to-as-routing-key framework), for
the interop tests in tests/tracer/test_interop_clients.py. Each returns the calls it
made with the client's own stopwatch."""
