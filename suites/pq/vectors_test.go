package pq

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"

	"github.com/e4c2/e4c2/suites/core"
)

var update = flag.Bool("update", false, "rewrite testdata/pq-vectors.json from the generator")

const vectorsFile = "pq-vectors.json"

// hexBytes marshals as lowercase hex.
type hexBytes []byte

func (h hexBytes) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

type vectorFile struct {
	Meta         vectorMeta       `json:"meta"`
	Sizes        core.Sizes       `json:"sizes"`
	IDs          []idVector       `json:"ids"`
	TopicHashes  []topicVector    `json:"topic_hashes"`
	Identities   []identityVector `json:"identities"`
	C2Keys       []c2KeyVector    `json:"c2_keys"`
	SKMessages   []skVector       `json:"sk_messages"`
	PKMessages   []pkVector       `json:"pk_messages"`
	Commands     []commandVector  `json:"commands"`
	PasswordKeys []passwordVector `json:"password_keys"`
	Negative     []negativeVector `json:"negative"`
}

type vectorMeta struct {
	Suite       string   `json:"suite"`
	Description string   `json:"description"`
	Conventions []string `json:"conventions"`
}

type idVector struct {
	Name string   `json:"name"`
	ID   hexBytes `json:"id"`
}

type topicVector struct {
	Topic     string   `json:"topic"`
	TopicHash hexBytes `json:"topic_hash"`
}

type identityVector struct {
	Seed             hexBytes `json:"seed"`
	MLDSASeed        hexBytes `json:"ml_dsa_65_seed"`
	MLKEMSeed        hexBytes `json:"ml_kem_768_seed"`
	SigningPublicKey hexBytes `json:"signing_public_key"`
	KEMPublicKey     hexBytes `json:"kem_public_key"`
	PublicKey        hexBytes `json:"public_key"`
}

type c2KeyVector struct {
	Seed      hexBytes `json:"seed"`
	PublicKey hexBytes `json:"public_key"`
}

type skVector struct {
	Description string   `json:"description"`
	TopicKey    hexBytes `json:"topic_key"`
	Timestamp   int64    `json:"timestamp"`
	Plaintext   hexBytes `json:"plaintext"`
	Protected   hexBytes `json:"protected"`
}

type pkVector struct {
	Description  string   `json:"description"`
	SignerSeed   hexBytes `json:"signer_seed"`
	SignerName   string   `json:"signer_name"`
	SignerID     hexBytes `json:"signer_id"`
	SignerPublic hexBytes `json:"signer_signing_public_key"`
	TopicKey     hexBytes `json:"topic_key"`
	Timestamp    int64    `json:"timestamp"`
	Plaintext    hexBytes `json:"plaintext"`
	Protected    hexBytes `json:"protected"`
}

type commandVector struct {
	Description  string   `json:"description"`
	ClientSeed   hexBytes `json:"client_seed"`
	ClientPublic hexBytes `json:"client_public_key"`
	C2Seed       hexBytes `json:"c2_seed"`
	C2Public     hexBytes `json:"c2_public_key"`
	EncapSeed    hexBytes `json:"encapsulation_seed"`
	Timestamp    int64    `json:"timestamp"`
	Command      hexBytes `json:"command"`
	KEMCiphertxt hexBytes `json:"kem_ciphertext"`
	SharedSecret hexBytes `json:"shared_secret"`
	CommandKey   hexBytes `json:"command_key"`
	Protected    hexBytes `json:"protected"`
}

type passwordVector struct {
	Password  string   `json:"password"`
	Valid     bool     `json:"valid"`
	Key       hexBytes `json:"key,omitempty"`
	PublicKey hexBytes `json:"identity_public_key,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// negativeVector is a message or command that must be refused with the
// named sentinel when checked at NowUnix with the default window.
type negativeVector struct {
	Description string   `json:"description"`
	Kind        string   `json:"kind"` // "sk", "pk" or "command"
	TopicKey    hexBytes `json:"topic_key,omitempty"`
	SignerID    hexBytes `json:"signer_id,omitempty"`
	SignerKey   hexBytes `json:"signer_signing_public_key,omitempty"`
	ClientSeed  hexBytes `json:"client_seed,omitempty"`
	C2Public    hexBytes `json:"c2_public_key,omitempty"`
	NowUnix     int64    `json:"now_unix"`
	Protected   hexBytes `json:"protected"`
	Error       string   `json:"error"`
}

// seq returns n bytes start, start+1, ... (mod 256).
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// errorNames maps the sentinels the vectors name.
var errorNames = map[string]error{
	"ErrInvalidProtectedLen": core.ErrInvalidProtectedLen,
	"ErrInvalidSignature":    core.ErrInvalidSignature,
	"ErrNotAuthentic":        core.ErrNotAuthentic,
	"ErrTimestampTooOld":     core.ErrTimestampTooOld,
	"ErrTimestampInFuture":   core.ErrTimestampInFuture,
	"ErrPubKeyNotFound":      core.ErrPubKeyNotFound,
	"ErrInvalidPassword":     core.ErrInvalidPassword,
	"ErrInvalidKey":          core.ErrInvalidKey,
}

func errorName(err error) string {
	for name, s := range errorNames {
		if errors.Is(err, s) {
			return name
		}
	}
	return fmt.Sprintf("unexpected: %v", err)
}

// generateVectors builds the whole vector file from fixed seeds. It runs
// the real code paths (the deterministic variants differ only in where
// randomness comes from).
func generateVectors(t testing.TB) *vectorFile {
	s := New()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	vf := &vectorFile{
		Meta: vectorMeta{
			Suite:       "pq",
			Description: "E4 pq suite vectors (ML-DSA-65, ML-KEM-768, AES-SIV, Argon2id) from fixed seeds; see suites/pq/doc.go for every layout",
			Conventions: []string{
				"byte strings are lowercase hex; timestamp is Unix seconds, carried as LE64",
				"signatures are deterministic ML-DSA-65 (rnd = 0); ProtectSigned/ProtectCommand sign hedged, which verifies the same way",
				"ml_dsa_65_seed = SHAKE-256(\"" + LabelIdentityMLDSA + "\" || seed)[:32], ml_kem_768_seed = SHAKE-256(\"" + LabelIdentityMLKEM + "\" || seed)[:64]",
				"public_key = signing_public_key (1952) || kem_public_key (1184)",
				"pk protected = LE64(ts) | signer_id | SIV | CT | ML-DSA-65(ctx \"" + ContextMessage + "\", every preceding byte)",
				"command protected = LE64(ts) | kem_ciphertext | SIV | CT | ML-DSA-65 of C2 (ctx \"" + ContextCommand + "\", every preceding byte); command_key = SHA3-256(shared_secret || kem_ciphertext); AES-SIV AD = LE64(ts)",
				"password key = Argon2id(password, salt \"" + ArgonSalt + "\", t=3, m=65536 KiB, p=4, 32 bytes)",
				"negative vectors are checked at now_unix with the default window (10 min back, none ahead)",
			},
		},
		Sizes: s.Sizes(),
	}
	for _, name := range []string{"client-1", "pq-peer-1", "c2", "\u00e9t\u00e9/capteur 7"} {
		vf.IDs = append(vf.IDs, idVector{Name: name, ID: s.ID(name)})
	}
	for _, topic := range []string{"topic/a", "sensors/temp", "e4/00112233445566778899aabbccddeeff"} {
		vf.TopicHashes = append(vf.TopicHashes, topicVector{Topic: topic, TopicHash: s.HashTopic(topic)})
	}

	idSeeds := [][]byte{seq(0x00, 32), seq(0x40, 32), bytes.Repeat([]byte{0xff}, 32)}
	idents := make([]*Identity, len(idSeeds))
	for i, seed := range idSeeds {
		id, err := NewIdentityFromSeed(seed)
		must(err)
		idents[i] = id
		dsaSeed := make([]byte, 32)
		expand(dsaSeed, LabelIdentityMLDSA, seed)
		kemSeed := make([]byte, 64)
		expand(kemSeed, LabelIdentityMLKEM, seed)
		pub := id.PublicKey()
		vf.Identities = append(vf.Identities, identityVector{
			Seed: seed, MLDSASeed: dsaSeed, MLKEMSeed: kemSeed,
			SigningPublicKey: id.SigningPublicKey(), KEMPublicKey: pub[SigningPublicKeySize:], PublicKey: pub,
		})
	}
	c2Seeds := [][]byte{seq(0x80, 32), seq(0xa0, 32)}
	c2s := make([]*C2Key, len(c2Seeds))
	for i, seed := range c2Seeds {
		k, err := NewC2KeyFromSeed(seed)
		must(err)
		c2s[i] = k
		vf.C2Keys = append(vf.C2Keys, c2KeyVector{Seed: seed, PublicKey: k.PublicKey()})
	}

	const ts = 1_700_000_000
	topicKey := seq(0x00, 32)
	for _, c := range []struct {
		desc string
		pt   []byte
	}{
		{"one byte", []byte{0x42}},
		{"short text", []byte("hello, post-quantum world")},
		{"exactly one block", seq(0x10, 16)},
		{"64 bytes", seq(0x00, 64)},
	} {
		p, err := s.Protect(topicKey, c.pt, time.Unix(ts, 0))
		must(err)
		vf.SKMessages = append(vf.SKMessages, skVector{Description: c.desc, TopicKey: topicKey, Timestamp: ts, Plaintext: c.pt, Protected: p})
	}

	signers := []struct {
		name string
		id   *Identity
	}{{"client-1", idents[0]}, {"pq-peer-1", idents[1]}}
	pkCases := []struct {
		desc   string
		signer int
		pt     []byte
	}{
		{"empty plaintext (accepted)", 0, nil},
		{"short text", 0, []byte("hello from client-1")},
		{"64 bytes from a peer", 1, seq(0x20, 64)},
	}
	for _, c := range pkCases {
		sg := signers[c.signer]
		bound, err := sg.id.WithClientID(s.ID(sg.name))
		must(err)
		p, err := ProtectSignedDeterministic(bound, topicKey, c.pt, time.Unix(ts, 0))
		must(err)
		vf.PKMessages = append(vf.PKMessages, pkVector{
			Description: c.desc, SignerSeed: sg.id.Bytes(), SignerName: sg.name, SignerID: s.ID(sg.name),
			SignerPublic: sg.id.SigningPublicKey(), TopicKey: topicKey, Timestamp: ts, Plaintext: c.pt, Protected: p,
		})
	}

	cmdCases := []struct {
		desc       string
		client, c2 int
		cmd        []byte
	}{
		{"ResetTopics", 0, 0, []byte{0x01}},
		{"SetTopicKey", 0, 0, append(append([]byte{0x03}, seq(0x20, 32)...), s.HashTopic("topic/a")...)},
		{"SetIdKey (32-byte seed)", 1, 0, append([]byte{0x02}, idSeeds[2]...)},
		{"SetPubKey (ML-DSA-65 public key then id)", 0, 0, append(append([]byte{0x06}, idents[1].SigningPublicKey()...), s.ID("pq-peer-1")...)},
		{"SetC2Key (new C2 ML-DSA-65 public key), protected with the old C2 key", 0, 0, append([]byte{0x07}, c2s[1].PublicKey()...)},
		{"ResetPubKeys under the second C2 key", 1, 1, []byte{0x05}},
	}
	for i, c := range cmdCases {
		encapSeed := seq(byte(0xc0+i), 32)
		client := idents[c.client]
		p, err := ProtectCommandDeterministic(c2s[c.c2], client.PublicKey(), c.cmd, time.Unix(ts, 0), encapSeed)
		must(err)
		// Recompute the intermediate values independently of protectCommand.
		var kp mlkem768.PublicKey
		must(kp.Unpack(client.PublicKey()[SigningPublicKeySize:]))
		ct := make([]byte, KEMCiphertextSize)
		ss := make([]byte, mlkem768.SharedKeySize)
		kp.EncapsulateTo(ct, ss, encapSeed)
		key := commandKey((*[32]byte)(ss), ct)
		vf.Commands = append(vf.Commands, commandVector{
			Description: c.desc, ClientSeed: client.Bytes(), ClientPublic: client.PublicKey(),
			C2Seed: c2s[c.c2].Bytes(), C2Public: c2s[c.c2].PublicKey(), EncapSeed: encapSeed, Timestamp: ts,
			Command: c.cmd, KEMCiphertxt: ct, SharedSecret: ss, CommandKey: key[:], Protected: p,
		})
	}

	for _, pw := range []string{"correct horse battery staple", "short-password", "\xff\xfe invalid utf-8 password"} {
		k, err := s.DeriveKey(pw)
		v := passwordVector{Password: pw, Valid: err == nil}
		if err != nil {
			v.Error = errorName(err)
		} else {
			id, err := NewIdentityFromSeed(k)
			must(err)
			v.Key, v.PublicKey = k, id.PublicKey()
		}
		vf.PasswordKeys = append(vf.PasswordKeys, v)
	}

	vf.Negative = negativeVectors(t, vf)
	return vf
}

// negativeVectors derives refused inputs from the positive vectors.
func negativeVectors(t testing.TB, vf *vectorFile) []negativeVector {
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		if i < 0 {
			i += len(c)
		}
		c[i] ^= 0x01
		return c
	}
	var out []negativeVector
	sk := vf.SKMessages[1]
	add := func(v negativeVector) { out = append(out, v) }
	add(negativeVector{Description: "sk: empty plaintext (24 bytes)", Kind: "sk", TopicKey: sk.TopicKey, NowUnix: sk.Timestamp, Protected: sk.Protected[:SKOverhead], Error: "ErrInvalidProtectedLen"})
	add(negativeVector{Description: "sk: flipped ciphertext byte", Kind: "sk", TopicKey: sk.TopicKey, NowUnix: sk.Timestamp, Protected: flip(sk.Protected, -1), Error: "ErrNotAuthentic"})
	add(negativeVector{Description: "sk: 601 s old", Kind: "sk", TopicKey: sk.TopicKey, NowUnix: sk.Timestamp + 601, Protected: sk.Protected, Error: "ErrTimestampTooOld"})
	add(negativeVector{Description: "sk: 1 s in the future", Kind: "sk", TopicKey: sk.TopicKey, NowUnix: sk.Timestamp - 1, Protected: sk.Protected, Error: "ErrTimestampInFuture"})

	pk := vf.PKMessages[1]
	pkv := func(desc string, p []byte, now int64, want string) {
		add(negativeVector{Description: desc, Kind: "pk", TopicKey: pk.TopicKey, SignerID: pk.SignerID, SignerKey: pk.SignerPublic, NowUnix: now, Protected: p, Error: want})
	}
	pkv("pk: one byte short of the overhead", pk.Protected[:PKOverhead-1], pk.Timestamp, "ErrInvalidProtectedLen")
	pkv("pk: signature cut off", pk.Protected[:len(pk.Protected)-SignatureSize], pk.Timestamp, "ErrInvalidProtectedLen")
	pkv("pk: flipped ciphertext byte", flip(pk.Protected, pkSIVOff+16), pk.Timestamp, "ErrInvalidSignature")
	pkv("pk: flipped signature byte", flip(pk.Protected, -1), pk.Timestamp, "ErrInvalidSignature")
	pkv("pk: flipped timestamp (signature covers it)", flip(pk.Protected, 0), pk.Timestamp+1, "ErrInvalidSignature")
	pkv("pk: unknown sender id", flip(pk.Protected, pkIDOff), pk.Timestamp, "ErrPubKeyNotFound")
	pkv("pk: 601 s old", pk.Protected, pk.Timestamp+601, "ErrTimestampTooOld")

	cmd := vf.Commands[0]
	cv := func(desc string, seed, c2pub, p []byte, want string) {
		add(negativeVector{Description: desc, Kind: "command", ClientSeed: seed, C2Public: c2pub, NowUnix: cmd.Timestamp, Protected: p, Error: want})
	}
	cv("command: empty command (overhead only)", cmd.ClientSeed, cmd.C2Public, cmd.Protected[:CommandOverhead], "ErrInvalidProtectedLen")
	cv("command: flipped KEM ciphertext byte", cmd.ClientSeed, cmd.C2Public, flip(cmd.Protected, cmdCTOff), "ErrInvalidSignature")
	cv("command: flipped signature byte", cmd.ClientSeed, cmd.C2Public, flip(cmd.Protected, -1), "ErrInvalidSignature")
	cv("command: verified against the other C2 key", cmd.ClientSeed, vf.C2Keys[1].PublicKey, cmd.Protected, "ErrInvalidSignature")
	cv("command: signed by C2 for another client", vf.Identities[1].Seed, cmd.C2Public, cmd.Protected, "ErrNotAuthentic")
	cv("command: c2 public key of wrong length", cmd.ClientSeed, cmd.C2Public[:100], cmd.Protected, "ErrInvalidKey")
	return out
}

// checkNegative runs one negative vector and returns the error it got.
func checkNegative(v negativeVector) error {
	s := New()
	now := time.Unix(v.NowUnix, 0)
	w := core.DefaultWindow()
	switch v.Kind {
	case "sk":
		_, err := s.Unprotect(v.TopicKey, v.Protected, now, w)
		return err
	case "pk":
		_, _, err := s.UnprotectSigned(v.TopicKey, v.Protected, now, w, func(id []byte) ([]byte, error) {
			if bytes.Equal(id, v.SignerID) {
				return v.SignerKey, nil
			}
			return nil, core.ErrPubKeyNotFound
		})
		return err
	case "command":
		id, err := NewIdentityFromSeed(v.ClientSeed)
		if err != nil {
			return err
		}
		_, err = s.UnprotectCommand(id, v.C2Public, v.Protected, now, w)
		return err
	}
	return fmt.Errorf("unknown kind %q", v.Kind)
}

func loadVectors(t testing.TB) *vectorFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", vectorsFile))
	if err != nil {
		t.Fatalf("pq vectors: %v (run go test -run TestVectors -update)", err)
	}
	var vf vectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatalf("pq vectors: %v", err)
	}
	return &vf
}

// TestVectors regenerates the vector file from its fixed seeds and compares
// it byte for byte with testdata/pq-vectors.json (-update rewrites it).
func TestVectors(t *testing.T) {
	got, err := json.MarshalIndent(generateVectors(t), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", vectorsFile)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(got))
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestVectors -update)", err)
	}
	if !bytes.Equal(got, want) {
		var wf vectorFile
		if err := json.Unmarshal(want, &wf); err != nil {
			t.Fatalf("stored vectors do not parse: %v", err)
		}
		t.Fatalf("regenerated vectors differ from %s (%d vs %d bytes); if the change is intended, run with -update and explain it", path, len(got), len(want))
	}
}

// TestVectorsVerify checks the stored vectors with the receiving side, so
// that a stored file is also valid input and not merely reproducible.
func TestVectorsVerify(t *testing.T) {
	vf := loadVectors(t)
	s := New()
	w := core.DefaultWindow()
	if len(vf.IDs) == 0 || len(vf.SKMessages) == 0 || len(vf.PKMessages) == 0 || len(vf.Commands) == 0 ||
		len(vf.Identities) == 0 || len(vf.PasswordKeys) == 0 || len(vf.Negative) == 0 {
		t.Fatal("a vector section is empty")
	}
	for _, v := range vf.IDs {
		if got := s.ID(v.Name); !bytes.Equal(got, v.ID) {
			t.Errorf("ID(%q) = %x, want %x", v.Name, got, v.ID)
		}
	}
	for _, v := range vf.Identities {
		id, err := s.ParseIdentity(v.Seed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(id.PublicKey(), v.PublicKey) || !bytes.Equal(id.SigningPublicKey(), v.SigningPublicKey) {
			t.Errorf("identity %x: public key mismatch", []byte(v.Seed))
		}
		if err := s.CheckPublicKey(v.PublicKey); err != nil {
			t.Errorf("CheckPublicKey: %v", err)
		}
	}
	for _, v := range vf.SKMessages {
		got, err := s.Unprotect(v.TopicKey, v.Protected, time.Unix(v.Timestamp, 0), w)
		if err != nil || !bytes.Equal(got, v.Plaintext) {
			t.Errorf("sk %q: %x, %v", v.Description, got, err)
		}
	}
	for _, v := range vf.PKMessages {
		got, sender, err := s.UnprotectSigned(v.TopicKey, v.Protected, time.Unix(v.Timestamp, 0), w,
			func(id []byte) ([]byte, error) {
				if bytes.Equal(id, v.SignerID) {
					return v.SignerPublic, nil
				}
				return nil, core.ErrPubKeyNotFound
			})
		if err != nil || !bytes.Equal(got, v.Plaintext) || !bytes.Equal(sender, v.SignerID) {
			t.Errorf("pk %q: %x, %x, %v", v.Description, got, sender, err)
		}
	}
	for _, v := range vf.Commands {
		id, err := s.ParseIdentity(v.ClientSeed)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.UnprotectCommand(id, v.C2Public, v.Protected, time.Unix(v.Timestamp, 0), w)
		if err != nil || !bytes.Equal(got, v.Command) {
			t.Errorf("command %q: %x, %v", v.Description, got, err)
		}
		if !bytes.Equal(v.Protected[cmdCTOff:cmdSIVOff], v.KEMCiphertxt) {
			t.Errorf("command %q: KEM ciphertext not at offset 8", v.Description)
		}
	}
	for _, v := range vf.Negative {
		err := checkNegative(v)
		want, ok := errorNames[v.Error]
		if !ok {
			t.Fatalf("%q: unknown error name %q", v.Description, v.Error)
		}
		if !errors.Is(err, want) {
			t.Errorf("%q: got %v, want %s", v.Description, err, v.Error)
		}
	}
}
