package client

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

// StateVersion is the version of the state file format written by this
// package. Load refuses other versions rather than guessing.
const StateVersion = 1

// maxStateSize bounds what Load reads (a pq client with thousands of peers
// stays far below).
const maxStateSize = 256 << 20

// stateFile is the JSON state file. Keys are base64 (encoding/json's []byte
// form); ids and topic hashes are lower-case hex map keys, so the file is
// deterministic (sorted keys) and reviewable without showing secrets in hex.
type stateFile struct {
	Version     int                  `json:"version"`
	Suite       string               `json:"suite"`
	Mode        string               `json:"mode"`
	ID          string               `json:"id"`
	Key         []byte               `json:"key"`
	C2PublicKey []byte               `json:"c2_public_key,omitempty"`
	TopicKeys   map[string]fileTopic `json:"topic_keys"`
	PubKeys     map[string][]byte    `json:"pub_keys,omitempty"`
}

type fileTopic struct {
	Key         []byte `json:"key"`
	PreviousKey []byte `json:"previous_key,omitempty"`
	ReplacedAt  int64  `json:"replaced_at,omitempty"` // Unix seconds
}

func (c *Client) encodeState(st *state) ([]byte, error) {
	f := stateFile{Version: StateVersion, Suite: c.set.suite.Name(), Mode: c.set.mode.String(),
		ID: hex.EncodeToString(st.id), Key: st.identityKey(), C2PublicKey: st.c2Pub,
		TopicKeys: make(map[string]fileTopic, len(st.topics))}
	for h, e := range st.topics {
		ft := fileTopic{Key: e.key}
		if e.prev != nil {
			ft.PreviousKey, ft.ReplacedAt = e.prev, e.replacedAt.Unix()
		}
		f.TopicKeys[hex.EncodeToString([]byte(h))] = ft
	}
	if c.set.mode == core.PubKey {
		f.PubKeys = make(map[string][]byte, len(st.pubKeys))
		for id, k := range st.pubKeys {
			f.PubKeys[hex.EncodeToString([]byte(id))] = k
		}
	}
	b, err := json.MarshalIndent(&f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("client: encode state: %w", err)
	}
	return append(b, '\n'), nil
}

// Save writes the current state to the state file. Commands already do it;
// Save is for callers that want a checkpoint.
func (c *Client) Save() error {
	if c.set.statePath == "" {
		return configErr("no state path")
	}
	c.cmdMu.Lock()
	defer c.cmdMu.Unlock()
	return c.writeState(c.st.Load(), false)
}

// writeState replaces the state file atomically: temporary file in the same
// directory (created 0600), write, fsync, rename over the old file, fsync
// of the directory so that the rename itself is durable. With create, an
// existing file is an error.
func (c *Client) writeState(st *state, create bool) (err error) {
	path := c.set.statePath
	data, err := c.encodeState(st)
	if err != nil {
		return err
	}
	if create {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("client: state file %s: %w (use Load to reopen it)", path, os.ErrExist)
		}
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("client: write state: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("client: write state: %w", err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("client: write state: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("client: write state: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("client: write state: %w", err)
	}
	if create {
		// Link instead of rename so that a file created meanwhile is not
		// replaced.
		if err = os.Link(tmp.Name(), path); err != nil {
			return fmt.Errorf("client: write state: %w", err)
		}
		os.Remove(tmp.Name())
	} else if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("client: write state: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil {
		serr := d.Sync()
		d.Close()
		if serr != nil {
			return fmt.Errorf("client: sync state directory: %w", serr)
		}
	}
	return nil
}

// Load reopens a client from its state file. The suite is the one the file
// records; WithSuite, if given, must name the same one (else an error
// saying both). The other options set the runtime settings (clock, window,
// policies), which are not persisted. A truncated, corrupt or inconsistent file is an error
// wrapping ErrStateCorrupt.
func Load(path string, opts ...Option) (*Client, error) {
	cfg := Config{}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.StatePath = path
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("client: load state: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("client: load state: %w", err)
	}
	if len(data) > maxStateSize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrStateCorrupt, path, maxStateSize)
	}
	var f stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrStateCorrupt, path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: trailing data", ErrStateCorrupt, path)
	}
	if f.Version != StateVersion {
		return nil, fmt.Errorf("%w: %s: version %d, this library reads version %d", ErrStateCorrupt, path, f.Version, StateVersion)
	}
	// The file names its suite: a device need not know it to reopen its
	// state. A suite given with WithSuite must be that one, so that a
	// device built for one suite never runs another's keys.
	if cfg.Suite == nil {
		s, err := suites.ByName(f.Suite)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrStateCorrupt, path, err)
		}
		cfg.Suite = s
	} else if f.Suite != cfg.Suite.Name() {
		return nil, configErr("state file %s is for suite %q, but WithSuite gave %q (omit WithSuite to use the file's)", path, f.Suite, cfg.Suite.Name())
	}
	if cfg.Mode, err = core.ParseMode(f.Mode); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrStateCorrupt, path, err)
	}
	set, err := resolve(&cfg)
	if err != nil {
		return nil, err
	}
	st, err := stateFromFile(set, &f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrStateCorrupt, path, err)
	}
	return newClient(set, st)
}

// stateFromFile validates every field of f against the suite.
func stateFromFile(set *settings, f *stateFile) (*state, error) {
	id, err := hex.DecodeString(f.ID)
	if err != nil || len(id) != core.IDLen {
		return nil, errors.New("id is not 16 hex-encoded bytes")
	}
	st := &state{id: id, topics: make(map[string]topicEntry, len(f.TopicKeys)),
		pubKeys: make(map[string][]byte, len(f.PubKeys))}
	if err := setIdentity(set, st, f.Key, f.C2PublicKey); err != nil {
		return nil, err
	}
	for h, t := range f.TopicKeys {
		hb, err := hex.DecodeString(h)
		if err != nil || len(hb) != core.IDLen || hex.EncodeToString(hb) != h {
			return nil, errors.New("topic hash is not 16 lower-case hex-encoded bytes")
		}
		e := topicEntry{key: t.Key}
		if len(t.Key) != set.sizes.Key {
			return nil, fmt.Errorf("topic %s: key is %d bytes, want %d", h, len(t.Key), set.sizes.Key)
		}
		if t.PreviousKey != nil {
			if len(t.PreviousKey) != set.sizes.Key || t.ReplacedAt <= 0 {
				return nil, fmt.Errorf("topic %s: invalid previous key or replacement time", h)
			}
			e.prev, e.replacedAt = t.PreviousKey, time.Unix(t.ReplacedAt, 0)
		} else if t.ReplacedAt != 0 {
			return nil, fmt.Errorf("topic %s: replacement time without previous key", h)
		}
		st.topics[string(hb)] = e
	}
	if set.mode == core.SymKey && len(f.PubKeys) != 0 {
		return nil, errors.New("pub_keys in an SK state")
	}
	for h, k := range f.PubKeys {
		hb, err := hex.DecodeString(h)
		if err != nil || len(hb) != core.IDLen || hex.EncodeToString(hb) != h {
			return nil, errors.New("pubkey id is not 16 lower-case hex-encoded bytes")
		}
		if len(k) != set.sizes.SigningPublic {
			return nil, fmt.Errorf("pubkey %s is %d bytes, want %d", h, len(k), set.sizes.SigningPublic)
		}
		st.pubKeys[string(hb)] = k
	}
	return st, nil
}

// setIdentity parses and stores the identity key (and the C2 key in PK).
func setIdentity(set *settings, st *state, key, c2Pub []byte) error {
	if set.mode == core.SymKey {
		if len(c2Pub) != 0 {
			return errors.New("c2 public key in an SK state")
		}
		if err := checkSymKey(set, key); err != nil {
			return err
		}
		st.key = cp(key)
		return nil
	}
	ident, err := set.pk.ParseIdentity(key)
	if err != nil {
		return fmt.Errorf("identity key: %w", wrapKeyErr(err))
	}
	if st.ident, err = bindIdentity(set.pk, ident, st.id); err != nil {
		return err
	}
	if err := set.pk.CheckC2PublicKey(c2Pub); err != nil {
		return fmt.Errorf("c2 public key: %w", wrapKeyErr(err))
	}
	st.c2Pub = cp(c2Pub)
	return nil
}
