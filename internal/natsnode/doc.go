// Package natsnode runs the embedded NATS server of e4c2's integrated mode
// (serve --cluster): a nats-server with JetStream whose cluster routes join
// the other C2 instances, so that three C2 instances replicate their log
// among themselves with nothing else to run.
//
// Start returns once the node accepts client connections and its JetStream
// meta group has a leader (a quorum of the configured nodes is up); the C2
// then opens its JetStream store on the node's loopback client URL.
//
// Routes can be mutual TLS (Options.RouteTLS: each end verifies the
// other's certificate against the cluster CA) and authenticated by a
// shared secret (Options.RouteSecret: the listening end refuses a dialer
// without it). The secret reaches nats-server only in memory, as a
// password derived from it; nats-server's own log stays off because it
// would name the route URLs.
package natsnode
