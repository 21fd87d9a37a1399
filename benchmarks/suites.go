package benchmarks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

// Group names of the suite measurements.
const (
	GroupSymmetric = "symmetric"
	GroupSignature = "signature"
	GroupCommand   = "command"
	GroupKDF       = "kdf"
	GroupOverhead  = "overhead"
)

// PayloadSizes are the message sizes of the protect/unprotect and
// sign/verify rows.
var PayloadSizes = []int{64, 1024, 64 * 1024}

// benchPassword is what DeriveKey stretches (the cost does not depend on it).
const benchPassword = "correct horse battery staple"

// sink keeps results alive so the compiler cannot drop the work. It is
// only written, by design.
//
//lint:ignore U1000 written, never read: defeats dead-code elimination
var sink []byte

// must panics on an error of the benchmark's own setup: the inputs are
// fixed and valid, so an error is a bug of the suite under test, and the
// runner's recover turns it into an error of Run.
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Errorf("benchmark setup: %w", err))
	}
	return v
}

// SuiteBench measures one suite: every operation with its same-run
// baseline, rows appended to rep. step is called before each measurement
// (progress).
func SuiteBench(rep *Report, s core.Suite, minTime time.Duration, step func(string)) {
	name := s.Name()
	ts := time.Now().Truncate(time.Second)
	w := core.DefaultWindow()
	key := must(s.GenerateKey())

	// Symmetric layer: AES-SIV (standard, pq) or AES-GCM (fips) against a
	// bare CBC + CTR pass over the same bytes, the floor of AES-SIV.
	blk := must(aes.NewCipher(key))
	iv := make([]byte, aes.BlockSize)
	for _, n := range PayloadSizes {
		msg := make([]byte, n)
		dst := make([]byte, n)
		base := func() {
			cipher.NewCBCEncrypter(blk, iv).CryptBlocks(dst, msg)
			cipher.NewCTR(blk, iv).XORKeyStream(dst, msg)
		}
		step(fmt.Sprintf("%s protect %s", name, sizeLabel(n)))
		op, b := Pair(func() { sink = must(s.Protect(key, msg, ts)) }, base, minTime)
		rep.Add(GroupSymmetric, "Symmetric layer (protect / unprotect) vs AES-256-CBC+CTR pass",
			Row{Suite: name, Op: "protect", Size: n, Value: op, Unit: "ns/op", Baseline: "cbc+ctr", BaselineValue: b}.withRatio())
		p := must(s.Protect(key, msg, ts))
		step(fmt.Sprintf("%s unprotect %s", name, sizeLabel(n)))
		op, b = Pair(func() { sink = must(s.Unprotect(key, p, ts, w)) }, base, minTime)
		rep.Add(GroupSymmetric, "",
			Row{Suite: name, Op: "unprotect", Size: n, Value: op, Unit: "ns/op", Baseline: "cbc+ctr", BaselineValue: b}.withRatio())
	}
	p := must(s.Protect(key, make([]byte, 64), ts))
	rep.Add(GroupOverhead, "Message overhead (bytes added to the payload)",
		Row{Suite: name, Op: "message", Value: float64(len(p) - 64), Unit: "bytes", Note: fmt.Sprintf("Sizes().SKOverhead=%d", s.Sizes().SKOverhead)})

	step(name + " password derivation")
	kdf, _ := Pair(func() { sink = must(s.DeriveKey(benchPassword)) }, nil, minTime)
	rep.Add(GroupKDF, "Password derivation (DeriveKey)",
		Row{Suite: name, Op: "derive", Value: kdf / 1e6, Unit: "ms/op"})

	pk, ok := s.(core.PKSuite)
	if !ok {
		return
	}
	pkBench(rep, pk, key, ts, w, minTime, step)
}

func pkBench(rep *Report, s core.PKSuite, key []byte, ts time.Time, w core.Window, minTime time.Duration, step func(string)) {
	name := s.Name()
	binder, ok := s.(core.IdentityBinder)
	if !ok {
		panic(fmt.Errorf("benchmark setup: suite %s cannot bind identities", name))
	}
	id := must(binder.BindIdentity(must(s.GenerateIdentity()), s.ID("bench-signer")))
	pub := id.SigningPublicKey()
	signer := func([]byte) ([]byte, error) { return pub, nil }
	bl := signBaseline(name)
	for _, n := range PayloadSizes {
		msg := make([]byte, n)
		var baseSign, baseVerify func()
		baseName := ""
		if bl != nil {
			baseName = bl.name
			baseSign, baseVerify = bl.make(n + s.Sizes().PKOverhead - s.Sizes().Signature)
		}
		step(fmt.Sprintf("%s sign %s", name, sizeLabel(n)))
		op, b := Pair(func() { sink = must(s.ProtectSigned(id, key, msg, ts)) }, baseSign, minTime)
		rep.Add(GroupSignature, "PK messages: protect+sign / verify+unprotect vs bare signature",
			Row{Suite: name, Mode: "pk", Op: "sign", Size: n, Value: op, Unit: "ns/op", Baseline: baseName + " sign", BaselineValue: b}.withRatio())
		p := must(s.ProtectSigned(id, key, msg, ts))
		step(fmt.Sprintf("%s verify %s", name, sizeLabel(n)))
		op, b = Pair(func() {
			out, _, err := s.UnprotectSigned(key, p, ts, w, signer)
			sink = must(out, err)
		}, baseVerify, minTime)
		rep.Add(GroupSignature, "",
			Row{Suite: name, Mode: "pk", Op: "verify", Size: n, Value: op, Unit: "ns/op", Baseline: baseName + " verify", BaselineValue: b}.withRatio())
	}
	sp := must(s.ProtectSigned(id, key, make([]byte, 64), ts))
	rep.Add(GroupOverhead, "", Row{Suite: name, Mode: "pk", Op: "message", Value: float64(len(sp) - 64), Unit: "bytes"})

	// Command key agreement: a SetTopicKey from C2 to one client.
	c2k := must(s.GenerateC2Key())
	dev := must(s.GenerateIdentity())
	cmd := must(core.EncodeSetTopicKey(key, s.HashTopic("bench")))
	var baseP, baseU func()
	baseName := ""
	if cb := commandBaseline(name); cb != nil {
		baseName = cb.name
		baseP, baseU = cb.make()
	}
	step(name + " protect command")
	op, b := Pair(func() { sink = must(s.ProtectCommand(c2k, dev.PublicKey(), cmd, ts)) }, baseP, minTime)
	rep.Add(GroupCommand, "PK commands (key agreement): C2 protect / device unprotect vs bare primitives",
		Row{Suite: name, Mode: "pk", Op: "protect-command", Value: op, Unit: "ns/op", Baseline: baseName, BaselineValue: b}.withRatio())
	pc := must(s.ProtectCommand(c2k, dev.PublicKey(), cmd, ts))
	step(name + " unprotect command")
	op, b = Pair(func() { sink = must(s.UnprotectCommand(dev, c2k.PublicKey(), pc, ts, w)) }, baseU, minTime)
	rep.Add(GroupCommand, "",
		Row{Suite: name, Mode: "pk", Op: "unprotect-command", Value: op, Unit: "ns/op", Baseline: baseName, BaselineValue: b}.withRatio())
	rep.Add(GroupOverhead, "", Row{Suite: name, Mode: "pk", Op: "command", Value: float64(len(pc) - len(cmd)), Unit: "bytes"})
}

// baseline builds bare-primitive closures for a message of n bytes.
type baseline struct {
	name string
	make func(n int) (sign, verify func())
}

// signBaseline is the bare signature of each suite over the bytes its PK
// layout signs: Ed25519 (standard), ECDSA P-256 with SHA-256 (fips),
// ML-DSA-65 (pq). Unknown suites have none.
func signBaseline(suite string) *baseline {
	switch suite {
	case "standard":
		return &baseline{"ed25519", func(n int) (func(), func()) {
			pub, priv := must2(ed25519.GenerateKey(rand.Reader))
			msg := make([]byte, n)
			sig := ed25519.Sign(priv, msg)
			return func() { sink = ed25519.Sign(priv, msg) },
				func() {
					if !ed25519.Verify(pub, msg, sig) {
						panic("benchmark setup: ed25519 baseline does not verify")
					}
				}
		}}
	case "fips":
		return &baseline{"ecdsa-p256", func(n int) (func(), func()) {
			priv := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
			msg := make([]byte, n)
			h := sha256.Sum256(msg)
			sig := must(ecdsa.SignASN1(rand.Reader, priv, h[:]))
			return func() {
					h := sha256.Sum256(msg)
					sink = must(ecdsa.SignASN1(rand.Reader, priv, h[:]))
				}, func() {
					h := sha256.Sum256(msg)
					if !ecdsa.VerifyASN1(&priv.PublicKey, h[:], sig) {
						panic("benchmark setup: ecdsa baseline does not verify")
					}
				}
		}}
	case "pq":
		return &baseline{"ml-dsa-65", func(n int) (func(), func()) {
			pub, priv := must2(mldsa65.GenerateKey(rand.Reader))
			msg := make([]byte, n)
			sig := make([]byte, mldsa65.SignatureSize)
			if err := mldsa65.SignTo(priv, msg, nil, true, sig); err != nil {
				panic(fmt.Errorf("benchmark setup: %w", err))
			}
			out := make([]byte, mldsa65.SignatureSize)
			return func() { _ = mldsa65.SignTo(priv, msg, nil, true, out); sink = out },
				func() {
					if !mldsa65.Verify(pub, msg, nil, sig) {
						panic("benchmark setup: ml-dsa baseline does not verify")
					}
				}
		}}
	}
	return nil
}

// cmdBaseline builds the bare key agreement of a suite's command layer.
type cmdBaseline struct {
	name string
	make func() (protect, unprotect func())
}

// commandBaseline: one X25519 (standard) or P-256 ECDH (fips) agreement per
// side; for pq, ML-KEM-768 encapsulation + ML-DSA-65 signature (C2) and
// decapsulation + verification (device), the two public-key operations its
// command layout needs.
func commandBaseline(suite string) *cmdBaseline {
	ecdhPair := func(c ecdh.Curve) (func(), func()) {
		a, b := must(c.GenerateKey(rand.Reader)), must(c.GenerateKey(rand.Reader))
		return func() { sink = must(a.ECDH(b.PublicKey())) }, func() { sink = must(b.ECDH(a.PublicKey())) }
	}
	switch suite {
	case "standard":
		return &cmdBaseline{"x25519", func() (func(), func()) { return ecdhPair(ecdh.X25519()) }}
	case "fips":
		return &cmdBaseline{"ecdh-p256", func() (func(), func()) { return ecdhPair(ecdh.P256()) }}
	case "pq":
		// circl's ML-KEM-768, the implementation the pq suite uses.
		return &cmdBaseline{"ml-kem-768+ml-dsa-65", func() (func(), func()) {
			kpk, ksk := must2(mlkem768.GenerateKeyPair(rand.Reader))
			pub, priv := must2(mldsa65.GenerateKey(rand.Reader))
			msg := make([]byte, mlkem768.CiphertextSize+49+24)
			sig := make([]byte, mldsa65.SignatureSize)
			_ = mldsa65.SignTo(priv, msg, nil, true, sig)
			ct, ss := make([]byte, mlkem768.CiphertextSize), make([]byte, mlkem768.SharedKeySize)
			seed := make([]byte, mlkem768.EncapsulationSeedSize)
			kpk.EncapsulateTo(ct, ss, seed)
			out := make([]byte, mldsa65.SignatureSize)
			return func() {
					_, _ = rand.Read(seed)
					kpk.EncapsulateTo(ct, ss, seed)
					_ = mldsa65.SignTo(priv, msg, nil, true, out)
					sink = out
				}, func() {
					ksk.DecapsulateTo(ss, ct)
					if !mldsa65.Verify(pub, msg, nil, sig) {
						panic("benchmark setup: ml-dsa baseline does not verify")
					}
					sink = ss
				}
		}}
	}
	return nil
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(fmt.Errorf("benchmark setup: %w", err))
	}
	return a, b
}

// AllSuites is suites.All, the suites the runner measures by default.
func AllSuites() []core.Suite { return suites.All() }
