package console

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/e4c2/e4c2/domain"
	httpapi "github.com/e4c2/e4c2/transport/http"
)

// holder is one client's hold of the C2 public key.
type holder struct {
	Ref                          string
	Desired, Accepted, Confirmed uint64
}

type c2keyData struct {
	PK           bool
	Suite        string
	Version      uint64
	Fingerprint  string
	Holders      []holder
	Holding      int // on this page, clients that confirmed the current version
	Cursor, Next string
}

// c2key shows the C2 public key's fingerprint and version (PK mode), the
// rotation, and which devices hold the current key, a page at a time.
func (c *Console) c2key(q *req) error {
	ctx := q.r.Context()
	k, err := c.api.C2PublicKey(ctx)
	if errors.Is(err, domain.ErrNoC2Key) {
		return c.render(q, "c2key", "C2 key", c2keyData{})
	}
	if err != nil {
		return err
	}
	d := c2keyData{PK: true, Suite: k.Suite, Version: k.KeyVersion, Cursor: q.query("cursor")}
	if pub, err := hex.DecodeString(k.PublicKey); err == nil {
		sum := sha256.Sum256(pub)
		d.Fingerprint = "SHA256:" + hex.EncodeToString(sum[:16])
	}
	pg, err := c.api.Clients(ctx, httpapi.PageRequest{Cursor: d.Cursor, Limit: pageSize})
	if err != nil {
		return err
	}
	d.Next = pg.Next
	for _, cl := range pg.Items {
		h := holder{Ref: clientRef(cl)}
		if full, err := c.api.Client(ctx, h.Ref); err == nil && full.Sync != nil && full.Sync.C2Key != nil {
			h.Desired, h.Accepted, h.Confirmed = full.Sync.C2Key.Desired, full.Sync.C2Key.Accepted, full.Sync.C2Key.Confirmed
		}
		if h.Confirmed >= h.Desired && h.Desired > 0 {
			d.Holding++
		}
		d.Holders = append(d.Holders, h)
	}
	return c.render(q, "c2key", "C2 key", d)
}

// rotateC2Key generates a new C2 key pair (after confirmation).
func (c *Console) rotateC2Key(q *req) error {
	back := Prefix + "c2key"
	if q.needsConfirm("c2key/rotate", map[string][]string{}) {
		return nil
	}
	if err := c.api.NewC2Key(q.r.Context(), q.caller()); err != nil {
		return q.failed(back, err)
	}
	return q.done(back, "C2 key rotated: SetC2Key queued to every client")
}
