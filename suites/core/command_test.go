package core

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// standardSizes are the sizes of the standard suite (Ed25519 / X25519), the
// ones the reference vectors use. Spelled out here so that core does not
// import a suite.
var standardSizes = Sizes{Key: 32, SKOverhead: 24, PKOverhead: 104, IdentityKey: 64,
	PublicKey: 32, SigningPublic: 32, Signature: 64, C2PublicKey: 32, CommandOverhead: 24}

// pqLikeSizes exercise suite-dependent lengths that differ from the
// standard ones (a 32-byte identity seed, large signing and C2 keys).
var pqLikeSizes = Sizes{Key: 32, IdentityKey: 32, SigningPublic: 1952, C2PublicKey: 1952}

type cmdVector struct {
	Description string                     `json:"description"`
	Command     string                     `json:"command"`
	Code        int                        `json:"code"`
	Args        map[string]string          `json:"args"`
	Encoded     string                     `json:"encoded"`
	SK          struct{ Result vecResult } `json:"sk"`
	PK          struct{ Result vecResult } `json:"pk"`
}

type vecResult struct {
	OK        bool   `json:"ok"`
	Error     string `json:"error"`
	ErrorName string `json:"error_name"`
}

func loadCommandVectors(t testing.TB) []cmdVector {
	t.Helper()
	// The vectors live in the repository, relative to this package.
	data, err := os.ReadFile(filepath.Join("..", "testdata", "e4-standard.json"))
	if err != nil {
		t.Fatalf("vector file: %v", err)
	}
	var f struct {
		Commands []cmdVector `json:"commands"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Commands) == 0 {
		t.Fatal("no command vectors")
	}
	return f.Commands
}

// decodeExpectation maps a reference result to what DecodeCommand alone
// must return: nil when the command is well formed (even if the reference
// refused it later for a state or key-value reason), else the sentinel.
// The ad-hoc reference messages are matched here, in one table, because
// the reference exports no sentinel for them.
func decodeExpectation(t *testing.T, r vecResult) error {
	t.Helper()
	if r.OK {
		return nil
	}
	switch r.ErrorName {
	case "e4.ErrInvalidCommand":
		return ErrInvalidCommand
	case "e4.ErrUnsupportedOperation":
		return ErrUnsupportedOperation
	case "crypto.ErrTooShortCiphertext": // the empty command
		return ErrInvalidCommand
	case "(unexported/ad-hoc error)":
		switch {
		case strings.HasPrefix(r.Error, "invalid ") && strings.Contains(r.Error, " length"):
			// "invalid RemoveTopic length", "invalid symmetric key length, got 64..."
			return ErrInvalidCommand
		case strings.HasPrefix(r.Error, "no public key exists"),
			strings.HasPrefix(r.Error, "invalid c2 public key"):
			return nil // well formed; refused by the client state / key check
		}
	}
	t.Fatalf("unmapped reference error %q (%s)", r.Error, r.ErrorName)
	return nil
}

func TestDecodeCommandVectors(t *testing.T) {
	vecs := loadCommandVectors(t)
	for _, v := range vecs {
		enc, err := hex.DecodeString(v.Encoded)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []struct {
			mode Mode
			res  vecResult
		}{{SymKey, v.SK.Result}, {PubKey, v.PK.Result}} {
			t.Run(m.mode.String()+"/"+v.Description, func(t *testing.T) {
				want := decodeExpectation(t, m.res)
				c, err := DecodeCommand(enc, standardSizes, m.mode)
				if want == nil {
					if err != nil {
						t.Fatalf("DecodeCommand: %v", err)
					}
					if c.Code.String() != strings.Replace(v.Command, "SetIDKey", "SetIdKey", 1) {
						t.Errorf("code %v, vector %s", c.Code, v.Command)
					}
					re, err := c.Encode(standardSizes, m.mode)
					if err != nil || !bytes.Equal(re, enc) {
						t.Errorf("re-encode = %x, %v; want %x", re, err, enc)
					}
					return
				}
				if !errors.Is(err, want) {
					t.Fatalf("DecodeCommand error %v, want %v", err, want)
				}
				if !IsCommandError(err) {
					t.Errorf("error %T is not a *CommandError", err)
				}
			})
		}
	}
}

func TestTypedConstructorsMatchVectors(t *testing.T) {
	vecs := loadCommandVectors(t)
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	n := 0
	for _, v := range vecs {
		a := v.Args
		var got []byte
		var err error
		switch {
		case v.Command == "RemoveTopic" && a["topic_hash"] != "":
			got, err = EncodeRemoveTopic(h(a["topic_hash"]))
		case v.Command == "ResetTopics" && len(v.Encoded) == 2:
			got = EncodeResetTopics()
		case v.Command == "SetIDKey" && a["key"] != "":
			got, err = EncodeSetIDKey(h(a["key"]))
		case v.Command == "SetTopicKey" && a["key"] != "":
			got, err = EncodeSetTopicKey(h(a["key"]), h(a["topic_hash"]))
		case v.Command == "RemovePubKey" && a["id"] != "":
			got, err = EncodeRemovePubKey(h(a["id"]))
		case v.Command == "ResetPubKeys":
			got = EncodeResetPubKeys()
		case v.Command == "SetPubKey" && a["pubkey"] != "":
			got, err = EncodeSetPubKey(h(a["pubkey"]), h(a["id"]))
		case v.Command == "SetC2Key" && a["c2_pubkey"] != "":
			got, err = EncodeSetC2Key(h(a["c2_pubkey"]))
		default:
			continue
		}
		n++
		if err != nil || hex.EncodeToString(got) != v.Encoded {
			t.Errorf("%s: got %x, %v; want %s", v.Description, got, err, v.Encoded)
		}
	}
	if n < 10 {
		t.Fatalf("only %d constructor vectors checked", n)
	}
}

func TestDecodeCommandLengths(t *testing.T) {
	fill := func(n int) []byte { return bytes.Repeat([]byte{0xa5}, n) }
	cases := []struct {
		name  string
		sizes Sizes
		mode  Mode
		code  CommandCode
		n     int
		want  error
	}{
		{"sk setidkey 32", standardSizes, SymKey, CmdSetIDKey, 32, nil},
		{"sk setidkey 64", standardSizes, SymKey, CmdSetIDKey, 64, ErrInvalidCommand},
		{"pk setidkey 64", standardSizes, PubKey, CmdSetIDKey, 64, nil},
		{"pk setidkey 32", standardSizes, PubKey, CmdSetIDKey, 32, ErrInvalidCommand},
		{"pq setidkey 32", pqLikeSizes, PubKey, CmdSetIDKey, 32, nil},
		{"pq setpubkey", pqLikeSizes, PubKey, CmdSetPubKey, 1952 + 16, nil},
		{"pq setpubkey std len", pqLikeSizes, PubKey, CmdSetPubKey, 48, ErrInvalidCommand},
		{"pq setc2key", pqLikeSizes, PubKey, CmdSetC2Key, 1952, nil},
		{"sk setc2key", standardSizes, SymKey, CmdSetC2Key, 32, ErrUnsupportedOperation},
		{"sk resetpubkeys", standardSizes, SymKey, CmdResetPubKeys, 0, ErrUnsupportedOperation},
		{"pk resetpubkeys +1", standardSizes, PubKey, CmdResetPubKeys, 1, ErrInvalidCommand},
		{"removetopic 17", standardSizes, SymKey, CmdRemoveTopic, 17, ErrInvalidCommand},
		{"settopickey 48", standardSizes, PubKey, CmdSetTopicKey, 48, nil},
		{"settopickey 47", standardSizes, PubKey, CmdSetTopicKey, 47, ErrInvalidCommand},
		{"unknown 0x08", standardSizes, PubKey, 0x08, 0, ErrInvalidCommand},
		{"no sizes", Sizes{Key: 32}, PubKey, CmdSetC2Key, 32, ErrUnsupportedOperation},
		{"bad mode", standardSizes, 0, CmdResetTopics, 0, ErrUnsupportedOperation},
	}
	for _, c := range cases {
		b := append([]byte{byte(c.code)}, fill(c.n)...)
		cmd, err := DecodeCommand(b, c.sizes, c.mode)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if re, err := cmd.Encode(c.sizes, c.mode); err != nil || !bytes.Equal(re, b) {
				t.Errorf("%s: re-encode mismatch: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "a5a5") {
			t.Errorf("%s: error leaks argument bytes: %v", c.name, err)
		}
	}
	if _, err := DecodeCommand(nil, standardSizes, SymKey); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("empty command: %v", err)
	}
}

func TestDecodeCommandFields(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	th := bytes.Repeat([]byte{2}, 16)
	b, err := EncodeSetTopicKey(key, th)
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCommand(b, standardSizes, SymKey)
	if err != nil || !bytes.Equal(c.Key, key) || !bytes.Equal(c.TopicHash, th) || c.ID != nil {
		t.Fatalf("SetTopicKey fields: %+v %v", c, err)
	}
	b[1] = 9 // the decoded command owns its bytes
	if c.Key[0] != 1 {
		t.Error("decoded key aliases the input")
	}
	pub := bytes.Repeat([]byte{3}, 32)
	id := bytes.Repeat([]byte{4}, 16)
	b, _ = EncodeSetPubKey(pub, id)
	c, err = DecodeCommand(b, standardSizes, PubKey)
	if err != nil || !bytes.Equal(c.Key, pub) || !bytes.Equal(c.ID, id) {
		t.Fatalf("SetPubKey fields: %+v %v", c, err)
	}
	for _, bad := range []func() ([]byte, error){
		func() ([]byte, error) { return EncodeRemoveTopic(id[:15]) },
		func() ([]byte, error) { return EncodeSetTopicKey(nil, th) },
		func() ([]byte, error) { return EncodeSetTopicKey(key, key) },
		func() ([]byte, error) { return EncodeRemovePubKey(nil) },
		func() ([]byte, error) { return EncodeSetPubKey(pub, pub) },
		func() ([]byte, error) { return EncodeSetIDKey(nil) },
		func() ([]byte, error) { return EncodeSetC2Key(nil) },
	} {
		if _, err := bad(); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("constructor accepted bad input: %v", err)
		}
	}
	if _, err := (Command{Code: CmdSetTopicKey, Key: key, TopicHash: th[:3]}).Encode(standardSizes, SymKey); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("Encode with short hash: %v", err)
	}
	if s := CommandCode(0x42).String(); s != "UnknownCommand(0x42)" {
		t.Errorf("String = %q", s)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, v := range loadCommandVectors(f) {
		b, err := hex.DecodeString(v.Encoded)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false, false)
		f.Add(b, true, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, pk, pq bool) {
		mode, sizes := SymKey, standardSizes
		if pk {
			mode = PubKey
		}
		if pq {
			sizes = pqLikeSizes
		}
		c, err := DecodeCommand(b, sizes, mode)
		if err != nil {
			if !errors.Is(err, ErrInvalidCommand) && !errors.Is(err, ErrUnsupportedOperation) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		re, err := c.Encode(sizes, mode)
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("round trip: %x -> %x, %v", b, re, err)
		}
	})
}
