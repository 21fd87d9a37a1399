// Package notify broadcasts the head position of a log to any number of
// subscribers, and runs the catch-up-then-live subscription loop shared by
// the in-process backends (memstore, boltstore).
package notify
