package pq

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// crosscheckImports are the modules testdata/crosscheck.py needs: Python
// cryptography with ML-DSA and ML-KEM (recent releases only), AES-SIV and
// Argon2id.
const crosscheckImports = "from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem; " +
	"from cryptography.hazmat.primitives.ciphers.aead import AESSIV; " +
	"from cryptography.hazmat.primitives.kdf.argon2 import Argon2id"

// TestCrossCheckPython runs testdata/crosscheck.py, an independent
// re-derivation of every vector of pq-vectors.json with Python cryptography
// (OpenSSL's ML-DSA, ML-KEM, AES-SIV and Argon2id). TestVectors only proves
// that this package regenerates its own file; this test is what ties the
// file to another implementation of FIPS 203/204. It skips, saying why,
// when python3 or a cryptography with those primitives is missing (CI
// tries to install Debian's python3-cryptography, which may be too old).
func TestCrossCheckPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("skipped: python3 not found, the independent cross-check of pq-vectors.json did not run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, py, "-c", crosscheckImports).CombinedOutput(); err != nil {
		t.Skipf("skipped: python3 has no cryptography with ML-DSA, ML-KEM, AES-SIV and Argon2id (%s), the independent cross-check of pq-vectors.json did not run",
			lastLine(out, err))
	}
	cmd := exec.CommandContext(ctx, py, "crosscheck.py", vectorsFile)
	cmd.Dir = "testdata"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("crosscheck.py: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "checks passed") {
		t.Fatalf("crosscheck.py printed no result:\n%s", out)
	}
	t.Logf("crosscheck.py: %s", strings.TrimSpace(string(out)))
}

// lastLine is the last non-empty line of a failed command's output (a
// Python traceback ends with the exception), or the error itself.
func lastLine(out []byte, err error) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return err.Error()
}
