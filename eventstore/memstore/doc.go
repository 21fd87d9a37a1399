// Package memstore is an in-memory eventstore.Store for tests and for
// tools that need a scratch log. It keeps the same contract as the durable
// backends (hash chain, optimistic concurrency, subscriptions) but loses
// everything when the process ends.
package memstore
