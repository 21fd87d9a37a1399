package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The Dockerfile and the systemd unit start e4c2 serve with flags: a flag
// renamed or removed must fail here, not on a production host. The image
// is static and runs as a non-root user with a data volume.
func TestDeployFilesUseValidServeFlags(t *testing.T) {
	df, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	docker := strings.ReplaceAll(string(df), "\\\n", "")
	for _, want := range []string{"CGO_ENABLED=0", "USER 65532:65532", `VOLUME ["/var/lib/e4c2"]`} {
		if !strings.Contains(docker, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	mod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if gv := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod); gv == nil || !strings.Contains(docker, "ARG GO_VERSION="+string(gv[1])+"\n") {
		t.Errorf("Dockerfile GO_VERSION is not the go directive of go.mod")
	}
	m := regexp.MustCompile(`(?m)^CMD (\[.*\])$`).FindStringSubmatch(docker)
	if m == nil {
		t.Fatal("Dockerfile has no CMD [...] line")
	}
	var cmdArgs []string
	if err := json.Unmarshal([]byte(m[1]), &cmdArgs); err != nil {
		t.Fatalf("Dockerfile CMD: %v", err)
	}
	checkServeArgs(t, "Dockerfile", cmdArgs)

	unit, err := os.ReadFile(filepath.Join("..", "..", "deploy", "e4c2.service"))
	if err != nil {
		t.Fatal(err)
	}
	m = regexp.MustCompile(`(?m)^ExecStart=\S+ (.*)$`).FindStringSubmatch(string(unit))
	if m == nil {
		t.Fatal("deploy/e4c2.service has no ExecStart")
	}
	checkServeArgs(t, "e4c2.service", strings.Fields(m[1]))
	for _, want := range []string{"User=e4c2", "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=e4c2"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("deploy/e4c2.service lacks %s", want)
		}
	}
}

// checkServeArgs parses args (serve and its flags) with the real command.
func checkServeArgs(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("%s: does not run serve: %q", where, args)
	}
	root := newRootCmd(strings.NewReader(""), io.Discard, io.Discard)
	cmd, rest, err := root.Find(args)
	if err != nil || cmd.Name() != "serve" {
		t.Fatalf("%s: %v", where, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}
