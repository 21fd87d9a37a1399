// Command nodeproc runs one embedded NATS node (package natsnode) as a
// process of its own, for tests that must kill a node with SIGKILL: the
// three-instance HA test of internal/server builds it (without the race
// detector: nats-server is not our code, and instrumenting three copies of
// it on a 2-core machine starved the cluster until requests went
// unanswered for seconds) and starts one per node.
//
// It reads the node's natsnode.Options as JSON from the environment
// variable E4C2_NATS_NODE, checks that its ports are free (nats-server
// only logs a failed bind, which would surface as a ready timeout), starts
// the node, prints "nats node ready <client URL>" on stdout, and runs
// until killed, or until its parent process is gone.
package main
