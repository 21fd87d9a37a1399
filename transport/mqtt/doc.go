// Package mqtt delivers queued E4 commands to devices over MQTT.
//
// The C2 queues every command as an event; a Source (implemented by the C2
// service over its delivery-queue projection) hands the queued items to a
// Worker, which protects each one at publish time (Source.Build, so the
// 10-minute timestamp window starts when the message leaves), publishes it
// with QoS 2, not retained, on the client's control topic "e4/<hex id>",
// waits for the broker's PUBCOMP and records the outcome
// (Source.Delivered, or Source.Failed after bounded retries).
//
// Guarantees and policy:
//
//   - Per-client FIFO: command n+1 to a client is never published before
//     command n is confirmed or recorded failed. Different clients proceed
//     concurrently, within a window of unconfirmed publishes sized to the
//     broker (Publisher.SafeWindow): mosquitto drops a publisher past its
//     max_inflight_messages (default 20), mochi past its receive maximum
//     (1024), so external brokers default to 16 and the embedded one to 64.
//   - At least once: the Source is the durable queue. An item is recorded
//     delivered only after the broker confirmed it; a C2 that stops between
//     the two resends it after a restart. Commands are idempotent on the
//     device, so duplicates are harmless, and ordering is kept because the
//     resent item is still the client's head.
//   - A broker outage burns no retry: while the Publisher is not connected
//     (or a publish fails because the connection went away), the worker
//     waits (50ms doubling to 1s) and retries without counting an attempt
//     and without aging the item. Only failures while the broker is
//     reachable count towards Config.MaxAttempts and Config.MaxAge; then
//     the item is recorded failed and the client's next item goes out.
//     Commands queued during an outage are therefore all delivered, in
//     order, once the broker is back.
//
// Limits (what a confirmation does not cover):
//
//   - PUBCOMP (or the embedded broker's acceptance) means the broker took
//     the command, not that the device has it. A device with no persistent
//     session that is offline, or one past the broker's per-client queue
//     (broker.Config.MaxQueuedPerClient, mosquitto's max_queued_messages),
//     loses it and the C2 cannot tell.
//   - An attempt that times out while the connection stays up is rebuilt
//     and published again; paho may still complete the first copy later,
//     a stale duplicate that can arrive after newer commands. It takes a
//     broker that accepts but does not confirm for Config.AttemptTimeout.
//   - One worker per queue: two C2 instances running workers over the same
//     Source deliver everything twice, interleaved. Partition the queue by
//     client, or run delivery on one instance.
//
// Two Publishers: Paho (any MQTT 3.1.1 broker over tcp:// or ssl://, with a
// persistent session so in-flight QoS 2 survives reconnects) and InProcess
// (the embedded broker of package broker, no network, about 3x cheaper).
package mqtt
