// Package ack is the device acknowledgement extension ("e4c2 device ack
// v1"): an E4 device built on this project's library may tell the C2, through
// any broker, that it is online and that it applied a command. It is off by
// default and never required: a device that sends nothing (the 2020
// reference library) keeps working, and the C2 then only has the broker's
// acceptance as evidence.
//
// With the embedded broker the C2 sees each device's session and needs none
// of this. With an external broker it is the only way for the C2 to know
// what a device holds, to hold commands while the device is away, and to
// protect them when the device is back, so they never arrive stale.
//
// Messages, all on the device's ack topic "e4c2ack/<lower-case hex id>":
//
//   - hello, published (QoS 1) after every connection once the device is
//     subscribed to its control topic: body "e4c2-ack-v1:hello";
//   - applied, published (QoS 1) after the device applied a command: body
//     "e4c2-ack-v1:applied:" followed by the lower-case hex of the first 16
//     bytes of SHA-256 over the protected command exactly as received;
//   - offline, the connection's MQTT will: the clear body
//     "e4c2-ack-v1:offline". It is not authenticated (a will cannot be
//     signed at disconnection time); a forged one only makes the C2 hold the
//     device's commands until its next hello.
//
// hello and applied are protected like an E4 message from the device: in SK
// mode with its identity key (the suite's SK layout, timestamped), in PK mode
// signed by its identity under the public key credential.AuthKey (the
// suite's PK layout). The C2 accepts them within the protocol's timestamp
// window.
package ack
