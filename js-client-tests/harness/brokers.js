// The brokers of the outbox tests (issue 20): NATS with JetStream (NATS_URL, default
// nats://127.0.0.1:4222) and RabbitMQ (AMQP_URL, default amqp://guest:guest@127.0.0.1:5672/%2f),
// and a consumer of each that records what chatoxide published under a prefix of the test's own.
// Under CI=true a broker that does not answer is a failure, never a skip.
import net from "node:net";
import { connect as natsConnect } from "nats";
import amqp from "amqplib";

export const BROKERS = {
  nats: { url: process.env.NATS_URL ?? "nats://127.0.0.1:4222", defaultPort: 4222 },
  amqp: { url: process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672/%2f", defaultPort: 5672 },
};

/** Where `kind`'s broker listens, for a proxy in front of it. */
export function brokerAddress(kind) {
  const url = new URL(BROKERS[kind].url);
  return { host: url.hostname, port: Number(url.port || BROKERS[kind].defaultPort) };
}

/** `kind`'s URL with its address replaced by `port` on 127.0.0.1 (a proxy's). */
export function brokerUrlVia(kind, port) {
  const url = new URL(BROKERS[kind].url);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  return url.toString();
}

/** `false` when `kind`'s broker accepts a TCP connection; otherwise why the tests are skipped. */
export async function brokerMissing(kind) {
  const answers = await new Promise((resolve) => {
    const socket = net.connect(brokerAddress(kind));
    const done = (ok) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 2000);
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
  if (answers) return false;
  const reason = `${kind} does not answer at ${BROKERS[kind].url}: the outbox tests need it`;
  if (process.env.CI === "true") throw new Error(reason);
  console.error(`\n!!! SKIPPING THE OUTBOX TESTS ON ${kind.toUpperCase()}: ${reason} !!!\n`);
  return reason;
}

/**
 * Subscribes to everything published under `prefix` on `kind`'s broker (before the server
 * publishes). Returns { received, ids(), stored(), close() }: `received` grows with each
 * delivery, { id, event, room, messageId, data } (duplicates included); `stored()` is how many
 * messages the broker kept (NATS: the JetStream stream's count, after its de-duplication;
 * RabbitMQ: what the consumer got).
 */
export async function consume(kind, prefix) {
  return kind === "nats" ? consumeNats(prefix) : consumeAmqp(prefix);
}

async function consumeNats(prefix) {
  const nc = await natsConnect({ servers: BROKERS.nats.url });
  const received = [];
  const subscription = nc.subscribe(`${prefix}.rooms.>`, {
    callback: (err, msg) => {
      if (err) return;
      const body = JSON.parse(new TextDecoder().decode(msg.data));
      received.push({ ...record(body), header: msg.headers?.get("Nats-Msg-Id"), subject: msg.subject });
    },
  });
  await nc.flush();
  return {
    received,
    async stored() {
      const jsm = await nc.jetstreamManager();
      return (await jsm.streams.info(prefix)).state.messages;
    },
    async close() {
      subscription.unsubscribe();
      try {
        const jsm = await nc.jetstreamManager();
        await jsm.streams.delete(prefix);
      } catch {
        // never made: nothing to clean
      }
      await nc.close();
    },
  };
}

async function consumeAmqp(prefix) {
  const connection = await amqp.connect(BROKERS.amqp.url);
  const channel = await connection.createChannel();
  await channel.assertExchange(prefix, "topic", { durable: true });
  const { queue } = await channel.assertQueue("", { exclusive: true });
  await channel.bindQueue(queue, prefix, "rooms.#");
  const received = [];
  await channel.consume(
    queue,
    (msg) => {
      if (!msg) return;
      const body = JSON.parse(msg.content.toString("utf8"));
      received.push({ ...record(body), header: msg.properties.messageId, type: msg.properties.type, routingKey: msg.fields.routingKey });
    },
    { noAck: true },
  );
  return {
    received,
    async stored() {
      return new Set(received.map((r) => r.id)).size;
    },
    async close() {
      await channel.deleteExchange(prefix).catch(() => {});
      await connection.close().catch(() => {});
    },
  };
}

function record(body) {
  return { id: body.id, event: body.event, room: body.room, messageId: body.message_id, data: body.data };
}
