package sealing

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/e4c2/e4c2/eventstore"
)

// Sealer seals secret event fields (internal/eventcodec seals the keys of
// domain events with it). ad binds the sealed value to its place (see
// SealAD).
type Sealer interface {
	Seal(plaintext, ad []byte) ([]byte, error)
	Open(sealed, ad []byte) ([]byte, error)
}

var (
	// ErrWrongMasterKey: the master key does not open the keyring.
	ErrWrongMasterKey = errors.New("sealing: wrong master key")
	// ErrBadKeyring: the stored keyring does not decode.
	ErrBadKeyring = errors.New("sealing: malformed keyring")
	// ErrUnseal: a sealed value does not open (altered, moved to another
	// record, or not a sealed value).
	ErrUnseal = errors.New("sealing: sealed value does not open")
	// ErrUnknownKey: a sealed value names a data key the keyring lacks.
	ErrUnknownKey = errors.New("sealing: unknown data key")
	// ErrKeyringClosed: the keyring was closed and its keys zeroed.
	ErrKeyringClosed = errors.New("sealing: keyring closed")
)

const (
	sealedVersion = 1
	headerSize    = 5 // version || DEK id
	nonceSize     = 12
	keyringFormat = 1
)

// Domain-separation labels of every AEAD use.
var (
	labelSealed = []byte("e4c2/sealed/v1")
	labelWrap   = []byte("e4c2/dek-wrap/v1")
	labelCheck  = []byte("e4c2/keyring-check/v1")
	// checkPlain is the constant whose AEAD under the KEK is the
	// key-check value.
	checkPlain = []byte("e4c2 keyring key check")
)

// SealAD returns the associated data that binds a sealed value to the
// record that carries it: its stream, version and event type.
func SealAD(stream string, version uint64, eventType string) []byte {
	b := make([]byte, 0, 32+len(stream)+len(eventType))
	b = append(b, "e4c2/seal-ad/v1"...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(stream)))
	b = append(b, stream...)
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint64(b, uint64(len(eventType)))
	return append(b, eventType...)
}

// keyringFile is the stored form of the keyring. It holds no clear key.
type keyringFile struct {
	Format  int        `json:"format"`
	KDF     *KDFParams `json:"kdf,omitempty"` // nil: raw master key
	Check   []byte     `json:"check"`         // nonce || AEAD(KEK, checkPlain)
	Current uint32     `json:"current"`       // DEK used for new seals
	DEKs    []wrapped  `json:"deks"`
}

type wrapped struct {
	ID      uint32 `json:"id"`
	Wrapped []byte `json:"wrapped"` // nonce || AEAD(KEK, DEK)
}

// Keyring holds the unwrapped DEKs of a store and implements Sealer.
type Keyring struct {
	mu      sync.RWMutex
	storage eventstore.KeyringStorage
	kek     []byte
	file    keyringFile
	deks    map[uint32][]byte
	closed  bool
}

var _ Sealer = (*Keyring)(nil)

// OpenKeyring loads the keyring from storage and unwraps it with master,
// or creates and saves a new keyring (with one DEK) when storage has none.
// A wrong master key fails here with ErrWrongMasterKey, before anything is
// served.
//
// A new keyring is only created for an empty log: when storage is also an
// eventstore.Store that holds events, a missing keyring is an error
// wrapping eventstore.ErrNoKeyring (the values sealed in the log would be
// lost under a fresh keyring; restore the keyring instead).
func OpenKeyring(ctx context.Context, storage eventstore.KeyringStorage, master *MasterKey) (*Keyring, error) {
	raw, err := storage.LoadKeyring(ctx)
	if errors.Is(err, eventstore.ErrNoKeyring) {
		if log, ok := storage.(eventstore.Store); ok {
			recs, err := log.ReadAll(ctx, 1, 1)
			if err != nil {
				return nil, fmt.Errorf("sealing: check log: %w", err)
			}
			if len(recs) > 0 {
				return nil, fmt.Errorf("sealing: the log holds events but no keyring: refusing to create a new one: %w", eventstore.ErrNoKeyring)
			}
		}
		return createKeyring(ctx, storage, master)
	}
	if err != nil {
		return nil, fmt.Errorf("sealing: load keyring: %w", err)
	}
	var f keyringFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyring, err)
	}
	if f.Format != keyringFormat {
		return nil, fmt.Errorf("%w: format %d", ErrBadKeyring, f.Format)
	}
	kek, err := master.kek(f.KDF)
	if err != nil {
		return nil, err
	}
	k := &Keyring{storage: storage, kek: kek, file: f, deks: make(map[uint32][]byte)}
	if err := k.unwrapAll(); err != nil {
		k.zero()
		return nil, err
	}
	return k, nil
}

func createKeyring(ctx context.Context, storage eventstore.KeyringStorage, master *MasterKey) (*Keyring, error) {
	params, err := master.newParams(randRead)
	if err != nil {
		return nil, err
	}
	kek, err := master.kek(params)
	if err != nil {
		return nil, err
	}
	k := &Keyring{storage: storage, kek: kek, deks: make(map[uint32][]byte),
		file: keyringFile{Format: keyringFormat, KDF: params}}
	if k.file.Check, err = k.seal(kek, checkPlain, labelCheck); err != nil {
		k.zero()
		return nil, err
	}
	if _, err := k.addDEK(ctx); err != nil {
		k.zero()
		return nil, err
	}
	return k, nil
}

func randRead(b []byte) error {
	_, err := rand.Read(b)
	return err
}

// unwrapAll checks the key-check value, then unwraps every DEK.
func (k *Keyring) unwrapAll() error {
	if _, err := k.open(k.kek, k.file.Check, labelCheck); err != nil {
		return fmt.Errorf("%w: the key-check value does not open", ErrWrongMasterKey)
	}
	for _, w := range k.file.DEKs {
		dek, err := k.open(k.kek, w.Wrapped, wrapAD(w.ID))
		if err != nil || len(dek) != KeySize {
			return fmt.Errorf("%w: data key %d does not unwrap", ErrBadKeyring, w.ID)
		}
		if _, dup := k.deks[w.ID]; dup {
			return fmt.Errorf("%w: duplicate data key %d", ErrBadKeyring, w.ID)
		}
		k.deks[w.ID] = dek
	}
	if _, ok := k.deks[k.file.Current]; !ok {
		return fmt.Errorf("%w: current data key %d missing", ErrBadKeyring, k.file.Current)
	}
	return nil
}

func wrapAD(id uint32) []byte {
	return binary.BigEndian.AppendUint32(bytes.Clone(labelWrap), id)
}

// seal is nonce || AES-256-GCM(key, plain, ad).
func (k *Keyring) seal(key, plain, ad []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nil, plain, ad), nil
}

func (k *Keyring) open(key, sealed, ad []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.Overhead() {
		return nil, ErrUnseal
	}
	out, err := aead.Open(nil, nil, sealed, ad)
	if err != nil {
		return nil, ErrUnseal
	}
	return out, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealing: aes: %w", err)
	}
	// The nonce is drawn inside the AEAD and written before the
	// ciphertext (nonce || ciphertext || tag, the layout sealed values
	// always had): FIPS 140-only mode refuses GCM with a caller's nonce.
	return cipher.NewGCMWithRandomNonce(b)
}

// addDEK generates a DEK, makes it current and saves the keyring.
func (k *Keyring) addDEK(ctx context.Context) (uint32, error) {
	var id uint32 = 1
	for _, w := range k.file.DEKs {
		if w.ID >= id {
			id = w.ID + 1
		}
	}
	dek := make([]byte, KeySize)
	if err := randRead(dek); err != nil {
		return 0, fmt.Errorf("sealing: data key: %w", err)
	}
	w, err := k.seal(k.kek, dek, wrapAD(id))
	if err != nil {
		clear(dek)
		return 0, err
	}
	f := k.file
	f.DEKs = append(append([]wrapped(nil), f.DEKs...), wrapped{ID: id, Wrapped: w})
	f.Current = id
	if err := k.save(ctx, &f); err != nil {
		clear(dek)
		return 0, err
	}
	k.file = f
	k.deks[id] = dek
	return id, nil
}

func (k *Keyring) save(ctx context.Context, f *keyringFile) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("sealing: encode keyring: %w", err)
	}
	if err := k.storage.SaveKeyring(ctx, b); err != nil {
		return fmt.Errorf("sealing: save keyring: %w", err)
	}
	return nil
}

// Seal implements Sealer with the current DEK.
func (k *Keyring) Seal(plaintext, ad []byte) ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return nil, ErrKeyringClosed
	}
	id := k.file.Current
	aead, err := newAEAD(k.deks[id])
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerSize, headerSize+len(plaintext)+aead.Overhead())
	out[0] = sealedVersion
	binary.BigEndian.PutUint32(out[1:], id)
	return aead.Seal(out, nil, plaintext, sealedAD(out[:headerSize], ad)), nil
}

func sealedAD(header, ad []byte) []byte {
	b := make([]byte, 0, len(labelSealed)+len(header)+len(ad))
	return append(append(append(b, labelSealed...), header...), ad...)
}

// Open implements Sealer with whichever DEK sealed the value.
func (k *Keyring) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < headerSize+nonceSize+16 || sealed[0] != sealedVersion {
		return nil, ErrUnseal
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return nil, ErrKeyringClosed
	}
	id := binary.BigEndian.Uint32(sealed[1:])
	dek, ok := k.deks[id]
	if !ok {
		return nil, fmt.Errorf("%w: id %d", ErrUnknownKey, id)
	}
	aead, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	out, err := aead.Open(nil, nil, sealed[headerSize:], sealedAD(sealed[:headerSize], ad))
	if err != nil {
		return nil, ErrUnseal
	}
	return out, nil
}

// RotateDEK adds a new DEK used for new seals; values sealed under older
// DEKs still open. It returns the new DEK's id.
func (k *Keyring) RotateDEK(ctx context.Context) (uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return 0, ErrKeyringClosed
	}
	return k.addDEK(ctx)
}

// CurrentDEK returns the id of the DEK used for new seals.
func (k *Keyring) CurrentDEK() uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.file.Current
}

// Rotate re-wraps every DEK under newMaster (with a fresh salt for a
// passphrase) and saves the keyring. The log is not rewritten: sealed
// values keep opening, and from now on only newMaster opens the keyring.
func (k *Keyring) Rotate(ctx context.Context, newMaster *MasterKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return ErrKeyringClosed
	}
	params, err := newMaster.newParams(randRead)
	if err != nil {
		return err
	}
	kek, err := newMaster.kek(params)
	if err != nil {
		return err
	}
	f := keyringFile{Format: keyringFormat, KDF: params, Current: k.file.Current}
	fail := func(err error) error { clear(kek); return err }
	if f.Check, err = k.seal(kek, checkPlain, labelCheck); err != nil {
		return fail(err)
	}
	for _, w := range k.file.DEKs {
		nw, err := k.seal(kek, k.deks[w.ID], wrapAD(w.ID))
		if err != nil {
			return fail(err)
		}
		f.DEKs = append(f.DEKs, wrapped{ID: w.ID, Wrapped: nw})
	}
	if err := k.save(ctx, &f); err != nil {
		return fail(err)
	}
	clear(k.kek)
	k.kek, k.file = kek, f
	return nil
}

// Close zeroes the KEK and every DEK; later calls fail with
// ErrKeyringClosed. (The AES key schedules built per call are garbage and
// cannot be zeroed from Go.)
func (k *Keyring) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return ErrKeyringClosed
	}
	k.zero()
	return nil
}

func (k *Keyring) zero() {
	k.closed = true
	clear(k.kek)
	for id, d := range k.deks {
		clear(d)
		delete(k.deks, id)
	}
}

// String hides the keys from fmt and logs.
func (k *Keyring) String() string { return "sealing.Keyring(redacted)" }

// GoString hides the keys from %#v.
func (k *Keyring) GoString() string { return k.String() }
