// Consume a topic through a consumer group with kafkajs until N records were read.
const { Kafka, logLevel } = require("kafkajs");

async function main() {
  const [bootstrap, topic, group, expected] = process.argv.slice(2);
  const kafka = new Kafka({ clientId: "reader-js", brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 1000, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const records = [];
  let finished = false;
  // Disconnecting from inside eachMessage deadlocks kafkajs: finish from outside it.
  const finish = (code) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    consumer.disconnect().finally(() => {
      process.stdout.write(JSON.stringify({ count: records.length, records }) + "\n");
      process.exit(code);
    });
  };
  const timer = setTimeout(() => finish(2), 60000);
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      records.push({ partition, key: message.key && message.key.toString(), value: message.value.toString() });
      if (records.length >= Number(expected)) setImmediate(() => finish(0));
    },
  });
}

main().catch((err) => { console.error(err); process.exit(1); });
