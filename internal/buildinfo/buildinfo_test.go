package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	i := Info{Version: "v1.2.3", Revision: "0123456789abcdef0123", Modified: true, GoVersion: "go1.26"}
	if got, want := i.String(), "e4c2 v1.2.3 (rev 0123456789ab, modified) go1.26"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if got := (Info{Version: "(devel)", GoVersion: "go1.26"}).String(); !strings.Contains(got, "rev unknown") {
		t.Fatalf("String() = %q", got)
	}
}

func TestRead(t *testing.T) {
	i := Read()
	if i.GoVersion != runtime.Version() || i.Version == "" {
		t.Fatalf("Read() = %+v", i)
	}
}
