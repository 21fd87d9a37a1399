package c2

import "time"

// SetSnapshotPoll shortens the snapshot cadence check (tests).
func SetSnapshotPoll(d time.Duration) (restore func()) {
	old := snapshotPoll
	snapshotPoll = d
	return func() { snapshotPoll = old }
}
