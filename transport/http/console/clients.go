package console

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
	httpapi "github.com/e4c2/e4c2/transport/http"
)

// pageSize is the number of rows of a list page.
const pageSize = 50

// searchLimit bounds the matches a search collects before it stops.
const searchLimit = pageSize

// searchChunk is how many clients a search reads at once.
const searchChunk = 1000

type clientsData struct {
	Query   string
	Clients []httpapi.Client
	Status  map[string]string // client id -> sync status
	Total   int
	Cursor  string
	Next    string
	Exact   bool // the query named one client
	PK      bool
}

// clients is the client list: server-side pages, or a search by name (an
// exact name or hex id first, then names containing the query).
func (c *Console) clients(q *req) error {
	ctx := q.r.Context()
	d := clientsData{Query: q.query("q"), Cursor: q.query("cursor"), PK: c.isPK(ctx)}
	total, err := c.api.CountClients(ctx)
	if err != nil {
		return err
	}
	d.Total = total
	if d.Query == "" {
		pg, err := c.api.Clients(ctx, httpapi.PageRequest{Cursor: d.Cursor, Limit: pageSize})
		if err != nil {
			return err
		}
		d.Clients, d.Next = pg.Items, pg.Next
		d.Status = c.syncStatus(ctx, d.Clients)
		return c.render(q, "clients", "Clients", d)
	}
	if cl, err := c.api.Client(ctx, d.Query); err == nil && d.Cursor == "" {
		cl.Sync = nil
		d.Clients, d.Exact = []httpapi.Client{cl}, true
	}
	found, next, err := c.searchClients(ctx, d.Query, d.Cursor)
	if err != nil {
		return err
	}
	for _, cl := range found {
		if !d.Exact || cl.ID != d.Clients[0].ID {
			d.Clients = append(d.Clients, cl)
		}
	}
	d.Next = next
	d.Status = c.syncStatus(ctx, d.Clients)
	return c.render(q, "clients", "Clients", d)
}

// syncStatus is the sync status of each client of a page (one lookup
// each: a page is small).
func (c *Console) syncStatus(ctx context.Context, cs []httpapi.Client) map[string]string {
	out := make(map[string]string, len(cs))
	for _, cl := range cs {
		if full, err := c.api.Client(ctx, clientRef(cl)); err == nil && full.Sync != nil {
			out[cl.ID] = full.Sync.Status
		}
	}
	return out
}

// searchClients scans the clients from cursor for names containing
// query (case-insensitive) until a page is full; next resumes the scan.
func (c *Console) searchClients(ctx context.Context, query, cursor string) ([]httpapi.Client, string, error) {
	if s, ok := c.api.(httpapi.ClientSearcher); ok {
		pg, err := s.SearchClients(ctx, query, httpapi.PageRequest{Cursor: cursor, Limit: searchLimit})
		return pg.Items, pg.Next, err
	}
	needle := strings.ToLower(query)
	var out []httpapi.Client
	for {
		pg, err := c.api.Clients(ctx, httpapi.PageRequest{Cursor: cursor, Limit: searchChunk})
		if err != nil {
			return nil, "", err
		}
		for _, cl := range pg.Items {
			if strings.Contains(strings.ToLower(cl.Name), needle) || strings.HasPrefix(cl.ID, needle) {
				out = append(out, cl)
			}
		}
		if len(out) >= searchLimit || pg.Next == "" {
			return out, pg.Next, nil
		}
		cursor = pg.Next
	}
}

// isPK says whether the C2 runs in public-key mode (it has a C2 key).
func (c *Console) isPK(ctx context.Context) bool {
	_, err := c.api.C2PublicKey(ctx)
	return err == nil
}

type clientData struct {
	Client  httpapi.Client
	Ref     string // name, or hex id
	PK      bool
	Pending []httpapi.Delivery
	Audit   []httpapi.AuditEntry
	Names   map[string]string // topic hash -> name, for the queue
}

// client is one client's page: its topics with the key version desired,
// accepted and confirmed for each, pending commands, audit history and
// the actions the role allows.
func (c *Console) client(q *req) error {
	ctx := q.r.Context()
	ref := q.query("c")
	cl, err := c.api.Client(ctx, ref)
	if err != nil {
		return err
	}
	d := clientData{Client: cl, Ref: clientRef(cl), PK: cl.Sync != nil && cl.Sync.C2Key != nil, Names: map[string]string{}}
	if cl.Sync == nil {
		d.PK = c.isPK(ctx)
	} else {
		for _, t := range cl.Sync.Topics {
			d.Names[t.Hash] = t.Topic
		}
	}
	pend, err := c.api.PendingDeliveries(ctx, d.Ref, httpapi.PageRequest{Limit: pageSize})
	if err != nil {
		return err
	}
	d.Pending = pend.Items
	if d.Audit, err = c.auditTail(ctx, httpapi.AuditQuery{Client: cl.ID}, pageSize); err != nil {
		return err
	}
	return c.render(q, "client", displayName(cl), d)
}

func clientRef(cl httpapi.Client) string {
	if cl.Name != "" {
		return cl.Name
	}
	return cl.ID
}

func displayName(cl httpapi.Client) string {
	if cl.Name != "" {
		return cl.Name
	}
	return cl.ID
}

// auditTail returns the newest n entries of an audit query, newest
// first. The audit is read oldest first, so it reads the last
// tailWindow positions, and the whole trail only when they hold fewer
// than n matching entries.
func (c *Console) auditTail(ctx context.Context, aq httpapi.AuditQuery, n int) ([]httpapi.AuditEntry, error) {
	var start uint64
	if c.cfg.Position != nil && c.cfg.Position() > tailWindow {
		start = c.cfg.Position() - tailWindow
	}
	tail, err := c.auditFrom(ctx, aq, start, n)
	if err == nil && len(tail) < n && start > 0 {
		tail, err = c.auditFrom(ctx, aq, 0, n)
	}
	if err != nil {
		return nil, err
	}
	slices.Reverse(tail)
	return tail, nil
}

// tailWindow is how far back auditTail looks first (in log positions).
const tailWindow = 20000

// auditFrom returns the last n entries of aq after position start, oldest
// first.
func (c *Console) auditFrom(ctx context.Context, aq httpapi.AuditQuery, start uint64, n int) ([]httpapi.AuditEntry, error) {
	aq.Page = httpapi.PageRequest{Limit: 1000}
	if start > 0 {
		aq.Page.Cursor = strconv.FormatUint(start, 10)
	}
	var tail []httpapi.AuditEntry
	for {
		pg, err := c.api.Audit(ctx, aq)
		if err != nil {
			return nil, err
		}
		tail = append(tail, pg.Items...)
		if len(tail) > n {
			tail = append(tail[:0], tail[len(tail)-n:]...)
		}
		if pg.Next == "" {
			return tail, nil
		}
		aq.Page.Cursor = pg.Next
	}
}

// newClient registers a client from a name, a role and its key (SK) or
// public key (PK) in hex. The key is never shown back, not even on error.
func (c *Console) newClient(q *req) error {
	ctx := q.r.Context()
	name := q.form("name")
	back := Prefix + "clients"
	key, err := hex.DecodeString(strings.TrimSpace(q.r.PostFormValue("key")))
	if err != nil || len(key) == 0 {
		return q.failed(back, errors.New("the key must be given in hex"))
	}
	req := httpapi.NewClientRequest{Name: name, Role: q.form("role")}
	if c.isPK(ctx) {
		req.PublicKey = key
	} else {
		req.Key = key
	}
	cl, err := c.api.NewClient(ctx, q.caller(), req)
	clear(key)
	if err != nil {
		return q.failed(back, err)
	}
	return q.done(Prefix+"client?c="+url.QueryEscape(clientRef(cl)), "client "+displayName(cl)+" registered")
}

// destructive lists the actions that go through a confirmation page.
var destructive = map[string]bool{
	"client/reset": true, "client/remove": true, "client/pubkey/reset": true,
	"topic/remove": true, "c2key/rotate": true,
}

// needsConfirm sends an unconfirmed destructive action to its
// confirmation page.
func (q *req) needsConfirm(action string, params url.Values) bool {
	if !destructive[action] || q.r.PostFormValue("confirm") == "yes" {
		return false
	}
	params.Set("action", action)
	nethttp.Redirect(q.w, q.r, Prefix+"confirm?"+params.Encode(), nethttp.StatusSeeOther)
	return true
}

// clientAction runs one action on a client (the path names it).
func (c *Console) clientAction(q *req) error {
	ctx := q.r.Context()
	action := strings.TrimPrefix(q.r.URL.Path, Prefix)
	ref := q.form("client")
	back := Prefix + "client?c=" + url.QueryEscape(ref)
	if q.needsConfirm(action, url.Values{"client": {ref}}) {
		return nil
	}
	by := q.caller()
	var err error
	var msg string
	switch action {
	case "client/attach":
		topic := q.form("topic")
		err, msg = c.api.AttachClient(ctx, by, ref, topic), "attached to "+topic
	case "client/detach":
		topic := q.form("topic")
		err, msg = c.api.DetachClient(ctx, by, ref, topic), "detached from "+topic
	case "client/rotate":
		err, msg = c.api.NewClientKey(ctx, by, ref), "client key rotation queued"
	case "client/resync":
		var n int
		n, err = c.api.Resync(ctx, by, ref, q.form("full") == "yes")
		msg = fmt.Sprintf("resync queued %d command(s)", n)
	case "client/release":
		var res httpapi.ReleaseResult
		res, err = c.api.Release(ctx, by, ref)
		msg = fmt.Sprintf("released: %d command(s) may go to the broker now", res.Commands)
	case "client/reset":
		err, msg = c.api.ResetClient(ctx, by, ref), "ResetTopics queued"
	case "client/remove":
		if err = c.api.RemoveClient(ctx, by, ref, q.form("reset_topics") == "yes"); err == nil {
			return q.done(Prefix+"clients", "client "+ref+" removed")
		}
	case "client/pubkey/send":
		src := q.form("source")
		err, msg = c.api.SendClientPubKey(ctx, by, ref, src), "public key of "+src+" sent"
	case "client/pubkey/remove":
		src := q.form("source")
		err, msg = c.api.RemoveClientPubKey(ctx, by, ref, src), "public key of "+src+" removed"
	case "client/pubkey/reset":
		err, msg = c.api.ResetClientPubKeys(ctx, by, ref), "ResetPubKeys queued"
	default:
		return &statusError{nethttp.StatusNotFound, "no such action"}
	}
	if err != nil {
		return q.failed(back, err)
	}
	return q.done(back, msg)
}

// isBadInput says whether err is a name, topic, role or cursor the user
// typed wrong.
func isBadInput(err error) bool {
	return errors.Is(err, core.ErrInvalidName) || errors.Is(err, core.ErrInvalidTopic) ||
		errors.Is(err, domain.ErrInvalidRole) || errors.Is(err, c2.ErrInvalidCursor)
}

// isNotFound says whether err names an unknown client, topic or token.
func isNotFound(err error) bool {
	return errors.Is(err, domain.ErrUnknownClient) || errors.Is(err, domain.ErrUnknownTopic) ||
		errors.Is(err, domain.ErrUnknownToken)
}
