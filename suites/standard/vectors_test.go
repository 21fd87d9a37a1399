package standard_test

import (
	"bytes"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
)

// vectorsFile is the reference vector file shared with the device library.
var vectorsFile = filepath.Join("..", "testdata", "e4-standard.json")

// hexBytes decodes a lowercase hex JSON string.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

// result is the vector file's Result object.
type result struct {
	OK        bool     `json:"ok"`
	Output    hexBytes `json:"output"`
	Error     string   `json:"error"`
	ErrorName string   `json:"error_name"`
	Panic     string   `json:"panic"`
}

type vectors struct {
	IDs []struct {
		NameHex        hexBytes `json:"name_hex"`
		ID             hexBytes `json:"id"`
		ReceivingTopic string   `json:"receiving_topic"`
	} `json:"ids"`
	TopicHashes []struct {
		TopicHex           hexBytes `json:"topic_hex"`
		SHA3               hexBytes `json:"sha3_256"`
		TopicHash          hexBytes `json:"topic_hash"`
		TransitionSlotHash hexBytes `json:"transition_slot_hash"`
	} `json:"topic_hashes"`
	AESSIV []struct {
		Description string   `json:"description"`
		Key         hexBytes `json:"key"`
		AD          hexBytes `json:"ad"`
		Plaintext   hexBytes `json:"plaintext"`
		Output      hexBytes `json:"output"`
		SIV         hexBytes `json:"siv"`
		Ciphertext  hexBytes `json:"ciphertext"`
	} `json:"aes_siv"`
	SKMessages []message `json:"sk_messages"`
	PKMessages []message `json:"pk_messages"`
	Agreement  []struct {
		Description   string   `json:"description"`
		ClientSeed    hexBytes `json:"client_ed25519_seed"`
		ClientPrivate hexBytes `json:"client_ed25519_private"`
		ClientPublic  hexBytes `json:"client_ed25519_public"`
		ClientXPriv   hexBytes `json:"client_x25519_private"`
		ClientXPub    hexBytes `json:"client_x25519_public"`
		C2Private     hexBytes `json:"c2_x25519_private"`
		C2Public      hexBytes `json:"c2_x25519_public"`
		SharedPoint   hexBytes `json:"shared_point"`
		SharedKey     hexBytes `json:"shared_key"`
	} `json:"pk_key_agreement"`
	Passwords []struct {
		PasswordHex hexBytes `json:"password_hex"`
		Valid       bool     `json:"valid"`
		Key         hexBytes `json:"symmetric_key"`
		Seed        hexBytes `json:"ed25519_seed"`
		Private     hexBytes `json:"ed25519_private"`
		Public      hexBytes `json:"ed25519_public"`
		XPublic     hexBytes `json:"x25519_public_from_ed"`
	} `json:"password_keys"`
	Negative []struct {
		Description string              `json:"description"`
		Mode        string              `json:"mode"`
		Kind        string              `json:"kind"`
		ReceiverKey hexBytes            `json:"receiver_key"`
		ReceiverEd  hexBytes            `json:"receiver_ed25519_private"`
		C2Public    hexBytes            `json:"c2_x25519_public"`
		Topic       string              `json:"topic"`
		TopicKey    hexBytes            `json:"topic_key"`
		PubKeys     map[string]hexBytes `json:"receiver_pubkeys"`
		NowUnix     int64               `json:"now_unix"`
		Protected   hexBytes            `json:"protected"`
		Result      result              `json:"result"`
	} `json:"negative"`
	Window []struct {
		Description string   `json:"description"`
		Mode        string   `json:"mode"`
		NowUnix     int64    `json:"now_unix"`
		NowNanos    int64    `json:"now_nanos"`
		Protected   hexBytes `json:"protected"`
		TopicKey    hexBytes `json:"topic_key"`
		Result      result   `json:"result"`
	} `json:"timestamp_window"`
}

type message struct {
	Description string              `json:"description"`
	TopicKey    hexBytes            `json:"topic_key"`
	Timestamp   int64               `json:"timestamp"`
	Plaintext   hexBytes            `json:"plaintext"`
	SIV         hexBytes            `json:"siv"`
	Ciphertext  hexBytes            `json:"ciphertext"`
	Protected   hexBytes            `json:"protected"`
	Unprotect   result              `json:"unprotect_at_timestamp"`
	SignerID    hexBytes            `json:"signer_id"`
	SignerPriv  hexBytes            `json:"signer_ed25519_private"`
	SignerPub   hexBytes            `json:"signer_ed25519_public"`
	SignedPart  hexBytes            `json:"signed_part"`
	Signature   hexBytes            `json:"signature"`
	PubKeys     map[string]hexBytes `json:"receiver_pubkeys"`
}

func loadVectors(tb testing.TB) *vectors {
	tb.Helper()
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		tb.Fatalf("reading vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatalf("parsing vectors: %v", err)
	}
	return &v
}

// refErrors maps the reference's error names to our sentinels: the one
// table the negative vectors are judged by.
var refErrors = map[string]error{
	"crypto.ErrTooShortCiphertext":  core.ErrTooShortCiphertext,
	"crypto.ErrInvalidProtectedLen": core.ErrInvalidProtectedLen,
	"crypto.ErrTimestampInFuture":   core.ErrTimestampInFuture,
	"crypto.ErrTimestampTooOld":     core.ErrTimestampTooOld,
	"crypto.ErrInvalidSignature":    core.ErrInvalidSignature,
	"miscreant.ErrNotAuthentic":     core.ErrNotAuthentic,
	"keys.ErrPubKeyNotFound":        core.ErrPubKeyNotFound,
	"e4.ErrTopicKeyNotFound":        core.ErrTopicKeyMissing,
}

// The deliberate differences from the reference's results
// (docs/PROTOCOL.md section 6); the third (expired transition key) is a
// device-library matter and is asserted in client/.
const (
	diffPanic   = "difference 1: reference panics (PK 73..87 bytes), we return ErrInvalidProtectedLen"
	diffAdHocCT = "difference 2: reference's ad-hoc \"too short ciphertext\" (PK 88..103 bytes), we return ErrTooShortCiphertext"
)

// expectation turns a reference Result into the error we must return (nil
// for success) and, for the deliberate differences, which one applies.
func expectation(t *testing.T, r result) (diff string, want error) {
	t.Helper()
	switch {
	case r.OK:
		return "", nil
	case r.Panic != "":
		return diffPanic, core.ErrInvalidProtectedLen
	case r.ErrorName == "(unexported/ad-hoc error)" && r.Error == "too short ciphertext":
		return diffAdHocCT, core.ErrTooShortCiphertext
	}
	want, ok := refErrors[r.ErrorName]
	if !ok {
		t.Fatalf("no mapping for reference error %q (%q)", r.ErrorName, r.Error)
	}
	return "", want
}

// check compares our outcome with the reference's Result.
func check(t *testing.T, r result, got []byte, err error) (diff string) {
	t.Helper()
	diff, want := expectation(t, r)
	if want == nil {
		if err != nil {
			t.Fatalf("reference accepts, we return %v", err)
		}
		if !bytes.Equal(got, r.Output) {
			t.Fatalf("plaintext %x, reference %x", got, r.Output)
		}
		return ""
	}
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v (reference: %q %s)", err, want, r.Error, r.Panic)
	}
	if diff != "" {
		t.Logf("%s: got %v", diff, err)
	}
	return diff
}

func nonEmpty(t *testing.T, section string, n int) {
	t.Helper()
	if n == 0 {
		t.Fatalf("section %s has no vectors", section)
	}
	t.Logf("%s: %d vectors", section, n)
}

func TestVectorIDs(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "ids", len(v.IDs))
	s := standard.New()
	for i, tc := range v.IDs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			id := s.ID(string(tc.NameHex))
			if !bytes.Equal(id, tc.ID) {
				t.Fatalf("ID = %x, want %x", id, tc.ID)
			}
			if got := core.ControlTopic(id); got != tc.ReceivingTopic {
				t.Fatalf("control topic %q, want %q", got, tc.ReceivingTopic)
			}
		})
	}
}

func TestVectorTopicHashes(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "topic_hashes", len(v.TopicHashes))
	s := standard.New()
	for i, tc := range v.TopicHashes {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			full := sha3.Sum256(tc.TopicHex)
			if !bytes.Equal(full[:], tc.SHA3) {
				t.Fatalf("SHA3-256 = %x, want %x", full, tc.SHA3)
			}
			if h := s.HashTopic(string(tc.TopicHex)); !bytes.Equal(h, tc.TopicHash) {
				t.Fatalf("HashTopic = %x, want %x", h, tc.TopicHash)
			}
			// The reference's key-transition slot: the hash of the hash.
			if h := core.HashID(tc.TopicHash); !bytes.Equal(h, tc.TransitionSlotHash) {
				t.Fatalf("transition slot = %x, want %x", h, tc.TransitionSlotHash)
			}
		})
	}
}

func TestVectorAESSIV(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "aes_siv", len(v.AESSIV))
	for i, tc := range v.AESSIV {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			c, err := standard.NewSIV(tc.Key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tc.Output, append(bytes.Clone(tc.SIV), tc.Ciphertext...)) {
				t.Fatal("vector inconsistent: output != siv || ciphertext")
			}
			out := c.Seal(nil, tc.AD, tc.Plaintext)
			if !bytes.Equal(out, tc.Output) {
				t.Fatalf("Seal = %x\nwant   %x", out, tc.Output)
			}
			// Appending to a prefix must leave the prefix alone.
			pre := []byte("prefix")
			out2 := c.Seal(bytes.Clone(pre), tc.AD, tc.Plaintext)
			if !bytes.Equal(out2, append(bytes.Clone(pre), tc.Output...)) {
				t.Fatal("Seal with a prefix differs")
			}
			pt, err := c.Open(nil, tc.AD, tc.Output)
			if err != nil || !bytes.Equal(pt, tc.Plaintext) {
				t.Fatalf("Open = %x, %v", pt, err)
			}
			bad := bytes.Clone(tc.Output)
			bad[0] ^= 0x80
			if _, err := c.Open(nil, tc.AD, bad); !errors.Is(err, core.ErrNotAuthentic) {
				t.Fatalf("tampered Open: %v", err)
			}
		})
	}
}

// TestRFC5297 checks the general S2V/CTR code against RFC 5297 appendix
// A.1 (AES-128, separate MAC and CTR keys, one AD component).
func TestRFC5297(t *testing.T) {
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	key := unhex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
	ad := unhex("101112131415161718191a1b1c1d1e1f2021222324252627")
	pt := unhex("112233445566778899aabbccddee")
	want := unhex("85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c")
	c, err := standard.NewSIVKeys(key[:16], key[16:])
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Seal(nil, ad, pt); !bytes.Equal(got, want) {
		t.Fatalf("Seal = %x, want %x", got, want)
	}
	if got, err := c.Open(nil, ad, want); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %x, %v", got, err)
	}
}

func TestVectorSKMessages(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "sk_messages", len(v.SKMessages))
	s := standard.New()
	for i, tc := range v.SKMessages {
		t.Run(fmt.Sprintf("%d/%s", i, tc.Description), func(t *testing.T) {
			ts := time.Unix(tc.Timestamp, 0)
			p, err := s.Protect(tc.TopicKey, tc.Plaintext, ts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p, tc.Protected) {
				t.Fatalf("Protect = %x\nwant      %x", p, tc.Protected)
			}
			if !bytes.Equal(p[8:24], tc.SIV) || !bytes.Equal(p[24:], tc.Ciphertext) {
				t.Fatal("SIV / ciphertext fields differ")
			}
			// Again with the key in the suite's cache: the expanded key
			// served from the cache must give the same bytes.
			for r := 0; r < 4; r++ {
				if q, err := s.Protect(tc.TopicKey, tc.Plaintext, ts); err != nil || !bytes.Equal(q, tc.Protected) {
					t.Fatalf("use %d: Protect = %x, %v", r, q, err)
				}
			}
			got, err := s.Unprotect(tc.TopicKey, tc.Protected, ts, core.DefaultWindow())
			check(t, tc.Unprotect, got, err)
		})
	}
}

// pubDirectory is every signer of the pk_messages section, by id.
func pubDirectory(v *vectors) map[string][]byte {
	d := map[string][]byte{}
	for _, m := range v.PKMessages {
		d[string(m.SignerID)] = m.SignerPub
	}
	return d
}

// lookup returns a signer function over a hex-id -> public key table.
func lookup(hexTable map[string]hexBytes) func([]byte) ([]byte, error) {
	return func(id []byte) ([]byte, error) {
		if pub, ok := hexTable[hex.EncodeToString(id)]; ok {
			return pub, nil
		}
		return nil, fmt.Errorf("%w: %x", core.ErrPubKeyNotFound, id)
	}
}

func TestVectorPKMessages(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "pk_messages", len(v.PKMessages))
	s := standard.New()
	for i, tc := range v.PKMessages {
		t.Run(fmt.Sprintf("%d/%s", i, tc.Description), func(t *testing.T) {
			ts := time.Unix(tc.Timestamp, 0)
			id, err := standard.ParsePrivateKey(tc.SignerPriv)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(id.PublicKey(), tc.SignerPub) {
				t.Fatal("signer public key differs")
			}
			bound, err := id.WithClientID(tc.SignerID)
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.ProtectSigned(bound, tc.TopicKey, tc.Plaintext, ts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p, tc.Protected) {
				t.Fatalf("ProtectSigned = %x\nwant            %x", p, tc.Protected)
			}
			n := len(p)
			if !bytes.Equal(p[:n-64], tc.SignedPart) || !bytes.Equal(p[n-64:], tc.Signature) {
				t.Fatal("signed part / signature fields differ")
			}
			if !bytes.Equal(p[24:40], tc.SIV) || !bytes.Equal(p[40:n-64], tc.Ciphertext) {
				t.Fatal("SIV / ciphertext fields differ")
			}
			got, sender, err := s.UnprotectSigned(tc.TopicKey, tc.Protected, ts, core.DefaultWindow(), lookup(tc.PubKeys))
			check(t, tc.Unprotect, got, err)
			if err == nil && !bytes.Equal(sender, tc.SignerID) {
				t.Fatalf("sender %x, want %x", sender, tc.SignerID)
			}
		})
	}
}

func TestVectorKeyAgreement(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "pk_key_agreement", len(v.Agreement))
	s := standard.New()
	for i, tc := range v.Agreement {
		t.Run(fmt.Sprintf("%d/%s", i, tc.Description), func(t *testing.T) {
			id, err := standard.NewIdentityFromSeed(tc.ClientSeed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(id.Bytes(), tc.ClientPrivate) || !bytes.Equal(id.PublicKey(), tc.ClientPublic) {
				t.Fatal("Ed25519 key from seed differs")
			}
			h := sha512.Sum512(tc.ClientSeed)
			h[0] &= 248
			h[31] &= 127
			h[31] |= 64
			if !bytes.Equal(h[:32], tc.ClientXPriv) {
				t.Fatal("vector's client X25519 private key is not clamp(SHA-512(seed)[:32])")
			}
			if !bytes.Equal(id.X25519PublicKey(), tc.ClientXPub) {
				t.Fatalf("client X25519 public = %x, want %x", id.X25519PublicKey(), tc.ClientXPub)
			}
			mont, err := standard.MontgomeryPublicKey(tc.ClientPublic)
			if err != nil || !bytes.Equal(mont, tc.ClientXPub) {
				t.Fatalf("Edwards->Montgomery = %x, %v; want %x", mont, err, tc.ClientXPub)
			}
			c2, err := standard.NewC2Key(tc.C2Private)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c2.PublicKey(), tc.C2Public) {
				t.Fatal("C2 public key differs")
			}
			if k := sha3.Sum256(tc.SharedPoint); !bytes.Equal(k[:], tc.SharedKey) {
				t.Fatal("vector inconsistent: shared_key != SHA3-256(shared_point)")
			}
			kc2, err := s.C2CommandKey(c2, tc.ClientPublic)
			if err != nil || !bytes.Equal(kc2, tc.SharedKey) {
				t.Fatalf("C2CommandKey = %x, %v; want %x", kc2, err, tc.SharedKey)
			}
			kcl, err := s.ClientCommandKey(id, tc.C2Public)
			if err != nil || !bytes.Equal(kcl, tc.SharedKey) {
				t.Fatalf("ClientCommandKey = %x, %v; want %x", kcl, err, tc.SharedKey)
			}
			// A command protected by C2 opens on the client, and equals the
			// SK layout under the shared key (deterministic AES-SIV).
			ts := time.Unix(1_700_000_000, 0)
			cmd := []byte{0x01}
			p, err := s.ProtectCommand(c2, tc.ClientPublic, cmd, ts)
			if err != nil {
				t.Fatal(err)
			}
			if q, _ := s.Protect(tc.SharedKey, cmd, ts); !bytes.Equal(p, q) {
				t.Fatal("ProtectCommand is not Protect under the shared key")
			}
			if got, err := s.UnprotectCommand(id, tc.C2Public, p, ts, core.DefaultWindow()); err != nil || !bytes.Equal(got, cmd) {
				t.Fatalf("UnprotectCommand = %x, %v", got, err)
			}
		})
	}
}

func TestVectorPasswordKeys(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "password_keys", len(v.Passwords))
	s := standard.New()
	for i, tc := range v.Passwords {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			k, err := s.DeriveKey(string(tc.PasswordHex))
			if !tc.Valid {
				if !errors.Is(err, core.ErrInvalidPassword) {
					t.Fatalf("invalid password: got %v, want ErrInvalidPassword", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k, tc.Key) || !bytes.Equal(tc.Seed, tc.Key) {
				t.Fatalf("DeriveKey = %x, want %x", k, tc.Key)
			}
			id, err := s.IdentityFromSeed(k)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(id.Bytes(), tc.Private) || !bytes.Equal(id.PublicKey(), tc.Public) {
				t.Fatal("Ed25519 key from the password differs")
			}
			if x := id.(*standard.Identity).X25519PublicKey(); !bytes.Equal(x, tc.XPublic) {
				t.Fatalf("X25519 public = %x, want %x", x, tc.XPublic)
			}
		})
	}
}

// TestVectorNegative runs the negative section through a minimal receiver:
// one topic key (the control vector's topic), the vector's public-key
// table, and the client key for commands.
func TestVectorNegative(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "negative", len(v.Negative))
	s := standard.New()
	keyed := map[string]string{} // mode -> the topic the receiver holds a key for
	diffs := map[string]int{}
	kinds := map[string]int{}
	for i, tc := range v.Negative {
		if _, ok := keyed[tc.Mode]; !ok {
			if !tc.Result.OK || tc.Kind != "message" {
				t.Fatalf("first %s vector is not a valid control message", tc.Mode)
			}
			keyed[tc.Mode] = tc.Topic
		}
		kinds[tc.Mode+"/"+tc.Kind]++
		t.Run(fmt.Sprintf("%d/%s/%s/%s", i, tc.Mode, tc.Kind, tc.Description), func(t *testing.T) {
			now := time.Unix(tc.NowUnix, 0)
			w := core.DefaultWindow()
			var got []byte
			var err error
			switch {
			case tc.Kind == "message" && tc.Topic != keyed[tc.Mode]:
				err = fmt.Errorf("%w: %q", core.ErrTopicKeyMissing, tc.Topic)
			case tc.Kind == "message" && tc.Mode == "sk":
				got, err = s.Unprotect(tc.TopicKey, tc.Protected, now, w)
			case tc.Kind == "message" && tc.Mode == "pk":
				got, _, err = s.UnprotectSigned(tc.TopicKey, tc.Protected, now, w, lookup(tc.PubKeys))
			case tc.Kind == "command" && tc.Mode == "sk":
				got, err = s.Unprotect(tc.ReceiverKey, tc.Protected, now, w)
			case tc.Kind == "command" && tc.Mode == "pk":
				id, perr := standard.ParsePrivateKey(tc.ReceiverEd)
				if perr != nil {
					t.Fatal(perr)
				}
				got, err = s.UnprotectCommand(id, tc.C2Public, tc.Protected, now, w)
				// The client-side key path must agree with UnprotectCommand.
				k, kerr := s.ClientCommandKey(id, tc.C2Public)
				if kerr != nil {
					t.Fatal(kerr)
				}
				got2, err2 := s.Unprotect(k, tc.Protected, now, w)
				if !bytes.Equal(got, got2) || (err == nil) != (err2 == nil) {
					t.Fatalf("UnprotectCommand (%v) and Unprotect under the client key (%v) disagree", err, err2)
				}
			default:
				t.Fatalf("unknown vector kind %s/%s", tc.Mode, tc.Kind)
			}
			if d := check(t, tc.Result, got, err); d != "" {
				diffs[d]++
			}
		})
	}
	for _, k := range []string{"sk/message", "pk/message", "sk/command", "pk/command"} {
		if kinds[k] == 0 {
			t.Errorf("negative section has no %s vectors", k)
		}
	}
	t.Logf("negative vectors by kind: %v", kinds)
	// The two deliberate differences this suite owns must each be exercised.
	for _, d := range []string{diffPanic, diffAdHocCT} {
		if diffs[d] == 0 {
			t.Errorf("no vector exercised %s", d)
		}
	}
	t.Logf("deliberate differences asserted: %v", diffs)
}

func TestVectorTimestampWindow(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "timestamp_window", len(v.Window))
	s := standard.New()
	pubs := pubDirectory(v)
	signer := func(id []byte) ([]byte, error) {
		if p, ok := pubs[string(id)]; ok {
			return p, nil
		}
		return nil, core.ErrPubKeyNotFound
	}
	for i, tc := range v.Window {
		t.Run(fmt.Sprintf("%d/%s/%s", i, tc.Mode, tc.Description), func(t *testing.T) {
			now := time.Unix(tc.NowUnix, tc.NowNanos)
			var got []byte
			var err error
			switch tc.Mode {
			case "sk":
				got, err = s.Unprotect(tc.TopicKey, tc.Protected, now, core.DefaultWindow())
			case "pk":
				got, _, err = s.UnprotectSigned(tc.TopicKey, tc.Protected, now, core.DefaultWindow(), signer)
			default:
				t.Fatalf("unknown mode %q", tc.Mode)
			}
			check(t, tc.Result, got, err)
		})
	}
}

// TestDeliberateDifferences pins the two differences by construction, not
// only through the recorded vectors: every PK length 73..103 with a valid
// signature.
func TestDeliberateDifferences(t *testing.T) {
	s := standard.New()
	id, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1_700_000_000, 0)
	key := make([]byte, 32)
	for n := 73; n <= 104; n++ {
		// ts | arbitrary bytes | signature over them: the id is whatever
		// lies at bytes 8..24, so the lookup accepts any id.
		msg := make([]byte, n-64)
		core.PutTimestamp(msg, ts)
		for i := 8; i < len(msg); i++ {
			msg[i] = byte(i)
		}
		sig := signWith(t, id, msg)
		p := append(msg, sig...)
		anyID := func([]byte) ([]byte, error) { return id.SigningPublicKey(), nil }
		_, _, err := s.UnprotectSigned(key, p, ts, core.DefaultWindow(), anyID)
		switch {
		case n < 88:
			if !errors.Is(err, core.ErrInvalidProtectedLen) {
				t.Errorf("%d bytes (%s): got %v", n, diffPanic, err)
			}
		case n < 104:
			if !errors.Is(err, core.ErrTooShortCiphertext) {
				t.Errorf("%d bytes (%s): got %v", n, diffAdHocCT, err)
			}
		default:
			// 104 bytes: a 16-byte "SIV" that does not authenticate.
			if !errors.Is(err, core.ErrNotAuthentic) {
				t.Errorf("104 bytes with a garbage SIV: got %v", err)
			}
		}
	}
}
