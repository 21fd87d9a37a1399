// Package credential derives and checks the MQTT credential an E4 device
// presents to the C2's embedded broker (the "e4c2 device credential v1", a
// documented extension: the E4 protocol itself says nothing about broker
// authentication).
//
// The credential binds an MQTT connection to an E4 identity, so that only
// the device that holds an identity key can take its client id, read its
// control topic or publish as it:
//
//   - username: the lower-case hex of the device's 16-byte E4 id (32 characters);
//   - client id: "e4dev-" followed by the username;
//   - SK password: lower-case hex of HMAC-SHA256(identity key,
//     "e4c2-mqtt-v1:" + username), 64 characters. It is static for a key:
//     a device computes it once with any HMAC implementation, and a new one
//     after a SetIdKey.
//   - PK password: lower-case hex of an E4 PK-protected message (the suite's
//     signed layout, docs/PROTOCOL.md section 4) whose plaintext is
//     "e4c2-mqtt-v1:" + username, protected at the current time under the
//     public, fixed topic key AuthKey and signed by the device identity. It
//     proves possession of the identity key without sharing a secret with
//     the C2, and it expires: the broker accepts it for Window (10 minutes
//     back, 1 minute ahead), so a device computes a fresh one at every
//     connection (paho's credentials provider). A reference E4 device makes it
//     with its library's own message protection, given AuthKey as the key.
//
// The C2 checks an SK password against the device's current key and, until
// the device confirms a key rotation, its previous one. The password is a
// bearer credential on the wire: deploy the broker listener with TLS when it
// is not on loopback.
package credential
