package client

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
)

// ReadKeyFile returns the key held in a key file as e4c2 keygen writes it:
// lowercase hex and a newline (symmetric keys, PK identities, their .pub
// halves, the C2 public key of e4c2 c2key get --out). A file that is not
// hex is taken as the raw key bytes, so keys made by other tools work too.
// The caller should clear the key once used. Errors name the file, never
// its content.
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: key file: %w", err)
	}
	defer clear(b)
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return nil, fmt.Errorf("client: key file %s is empty", path)
	}
	if k, err := hex.DecodeString(string(t)); err == nil {
		return k, nil
	}
	return bytes.Clone(b), nil
}
