package benchmarks

import (
	"os"
	"os/exec"
	"testing"
)

// TestMain lets the test binary serve as its own device farm: the fan-out
// and attach benchmarks start it again with FarmEnv set.
func TestMain(m *testing.M) {
	RunFarmIfChild()
	os.Exit(m.Run())
}

// testFarm starts this test binary as a device farm (no test runs in it:
// RunFarmIfChild takes over in TestMain).
func testFarm() *exec.Cmd {
	return exec.Command(os.Args[0], "-test.run=^$")
}
