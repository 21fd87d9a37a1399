// Package buildinfo reports what was built: the module version, the VCS
// revision and whether the tree was modified, from the build information Go
// embeds in every binary (debug.ReadBuildInfo). `e4c2 version`, `--version`
// and the e4c2_build_info metric all read it here, so they cannot disagree.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info describes a build.
type Info struct {
	Version   string // module version ("(devel)" for a build from a checkout)
	Revision  string // VCS revision, "" when unknown
	Time      string // VCS commit time (RFC 3339), "" when unknown
	Modified  bool   // built from a tree with uncommitted changes
	GoVersion string
}

// Read returns the build information of the running binary.
func Read() Info {
	i := Info{Version: "(unknown)", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i
	}
	if bi.Main.Version != "" {
		i.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String is the one-line form: "e4c2 v1.2.3 (rev abcdef123456, modified) go1.26".
func (i Info) String() string {
	rev := i.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		rev = "unknown"
	}
	if i.Modified {
		rev += ", modified"
	}
	return fmt.Sprintf("e4c2 %s (rev %s) %s", i.Version, rev, i.GoVersion)
}
