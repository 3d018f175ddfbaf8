// Produce JSON Lines from stdin to a topic with kafkajs's default (murmur2) partitioner,
// keyed by village_id, the way a hub system written in JavaScript would.
const { Kafka, logLevel } = require("kafkajs");
const readline = require("readline");

async function main() {
  const [bootstrap, topic] = process.argv.slice(2);
  const kafka = new Kafka({ clientId: "hub-js", brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  const lines = [];
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line.trim()) lines.push(line);
  }
  const messages = lines.map((line) => ({ key: JSON.parse(line).village_id, value: line }));
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
  process.stdout.write(JSON.stringify({ sent: messages.length }) + "\n");
}

main().catch((err) => { console.error(err); process.exit(1); });
