// Package server is the composition root of e4c2: the only package that
// knows every other one. It opens the store and the master key, builds the
// C2 service, runs the automation engine, starts the embedded MQTT broker
// (or connects to an external one), runs the delivery worker and serves the
// HTTP API, then shuts all of it down in reverse order on cancellation.
//
// The order of shutdown is what keeps queued commands safe: the HTTP server
// stops accepting first (no new operations), the delivery worker finishes
// its in-flight publishes and records them, the service saves its
// checkpoints, and only then the broker and the store close. Whatever was
// queued but not confirmed stays in the log and is resent at the next start.
package server
