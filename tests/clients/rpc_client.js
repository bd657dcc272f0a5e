// The RabbitMQ tutorial's RPC client (tutorial six) with amqplib: an exclusive reply
// queue, one call at a time to rpc_queue with reply_to and correlation_id. Prints one
// JSON line per call: {"correlation_id", "client_ms", "answer"}.
// Usage: node rpc_client.js AMQP_URL CALLS APART_MS
"use strict";
const amqp = require("amqplib");
const crypto = require("crypto");

// The client's stopwatch at its socket, as for the other interop clients: from
// the last bytes written to the first bytes read after them. amqplib (2.3,
// pinned) writes its frames with the socket's write() and reads in paused mode,
// so the bytes that come pass through the socket's push(); what amqplib does on
// either side (buffering the publish until a later tick, parsing, the callback)
// is left out.
function socketTimes(socket) {
  const times = { sentAt: 0n, roundTripMs: 0, waiting: false };
  const write = socket.write;
  socket.write = function (...args) {
    const written = write.apply(this, args);
    times.sentAt = process.hrtime.bigint();
    times.waiting = true;
    return written;
  };
  const push = socket.push;
  socket.push = function (...args) {
    if (times.waiting && args[0] !== null) {
      times.roundTripMs = Number(process.hrtime.bigint() - times.sentAt) / 1e6;
      times.waiting = false;
    }
    return push.apply(this, args);
  };
  return times;
}

async function main(url, calls, apartMs) {
  const connection = await amqp.connect(url, { clientProperties: { connection_name: "amqplib rpc client" } });
  const wire = socketTimes(connection.connection.stream);
  const channel = await connection.createChannel();
  const { queue: replyQueue } = await channel.assertQueue("", { exclusive: true });
  const waiting = new Map();
  await channel.consume(
    replyQueue,
    (msg) => {
      const done = waiting.get(msg.properties.correlationId);
      if (done) done(msg.content.toString());
    },
    { noAck: true },
  );
  for (let index = 0; index < calls; index++) {
    const n = 10 + (index % 10);
    const correlationId = crypto.randomUUID();
    const answered = new Promise((resolve) => waiting.set(correlationId, resolve));
    channel.sendToQueue("rpc_queue", Buffer.from(n.toString()), { correlationId, replyTo: replyQueue });
    const answer = await answered;
    const clientMs = wire.roundTripMs;
    waiting.delete(correlationId);
    process.stdout.write(JSON.stringify({ correlation_id: correlationId, client_ms: clientMs, answer }) + "\n");
    await new Promise((resolve) => setTimeout(resolve, apartMs));
  }
  await connection.close();
}

main(process.argv[2], parseInt(process.argv[3], 10), parseInt(process.argv[4], 10)).catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
