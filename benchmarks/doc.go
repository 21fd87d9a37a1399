// Package benchmarks measures what users choose a suite and a deployment by:
// the cost of every suite and mode (protect, unprotect, sign/verify, command
// key agreement, password derivation, message overhead), the event store
// (durable appends with 1 and 8 writers, replay of a log into the key state)
// and the C2 end to end (time from a topic rotation request until every
// connected device-library client holds the key the C2 set and the C2
// recorded every delivery, through the embedded broker and through
// mosquitto, next to the floor of the same broker delivering as many
// messages alone), plus the C2's memory with many clients and the
// throughput of concurrent attach operations.
//
// Run is the one entry point: `go run ./benchmarks/cmd/e4c2-bench` and
// `e4c2 bench` both call it. It prints a table, writes a JSON report for later
// comparison (Compare prints the ratios between two runs) and one SVG bar chart
// per group (WriteSVG).
//
// Every group carries a same-run baseline (a bare AES-256-CBC + AES-256-CTR
// pass for the symmetric layer, bare Ed25519 / ECDSA P-256 / ML-DSA-65 for
// signatures, a bare append + fsync of a file in the same directory for the
// store, the broker alone for the fan-out) and reports the ratio to it: on a
// shared, noisy machine a ratio from one run is meaningful where absolute
// times are not.
//
// Devices run in a child process (the "device farm", the same executable
// started again with FarmEnv set): 10,000 MQTT connections need 20,000 file
// descriptors when both ends live in one process, above the usual limit, and
// a separate process keeps the C2's memory figures clean. Each device is a
// client.Client fed by a minimal MQTT 3.1.1 client of this package
// (CONNECT with the device's credential of package client/credential,
// SUBSCRIBE QoS 2, PUBLISH QoS 2 with PUBREC/PUBREL/PUBCOMP): at
// 10,000 connections on two cores paho's per-connection goroutines and
// buffers would measure paho rather than the C2. The device library still
// authenticates, decodes and applies every command (client.Unprotect).
package benchmarks
