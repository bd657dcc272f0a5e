// The RabbitMQ tutorial's RPC server (tutorial six) with amqplib: consumes rpc_queue,
// answers fib(n) to the request's reply_to through the default exchange.
// Usage: node rpc_server.js AMQP_URL   (prints "ready" once consuming; SIGTERM stops it)
"use strict";
const amqp = require("amqplib");

function fibonacci(n) {
  return n === 0 || n === 1 ? n : fibonacci(n - 1) + fibonacci(n - 2);
}

async function main(url) {
  const connection = await amqp.connect(url, { clientProperties: { connection_name: "amqplib rpc server" } });
  const channel = await connection.createChannel();
  const queue = "rpc_queue";
  await channel.assertQueue(queue, { durable: false });
  await channel.prefetch(1);
  await channel.consume(queue, (msg) => {
    const n = parseInt(msg.content.toString(), 10);
    channel.sendToQueue(msg.properties.replyTo, Buffer.from(fibonacci(n).toString()), {
      correlationId: msg.properties.correlationId,
    });
    channel.ack(msg);
  });
  process.stdout.write("ready\n");
  process.on("SIGTERM", async () => {
    await connection.close();
    process.exit(0);
  });
}

main(process.argv[2]).catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
