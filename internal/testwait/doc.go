// Package testwait is the tree's one way for a test to wait for an
// asynchronous effect: poll a condition until it holds, and fail the test
// with a message naming what was awaited if it does not hold in time.
//
// A fixed sleep used as synchronization passes on a fast machine and flakes
// on a loaded one (CI shares two cores among many jobs, under -race); a
// poll with a generous bound costs nothing when the effect is quick and
// only fails when the effect never comes. The bound is therefore the same
// for every positive wait, 30 s, far above any expected latency: a test
// that must show something does NOT happen cannot use this package and has
// to say which time passage it relies on.
package testwait
