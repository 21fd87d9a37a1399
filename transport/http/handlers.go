package http

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// ---- request helpers -------------------------------------------------------

// pathParam returns a path parameter decoded once. Echo routes on RawPath
// when the URL holds escapes such as %2F (topics contain '/'), and then
// hands the parameter over still escaped.
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath != "" {
		u, err := url.PathUnescape(v)
		if err != nil {
			return "", badRequest("invalid_path", "path parameter %s is not valid percent-encoding", name)
		}
		v = u
	}
	return v, nil
}

// clientParam returns a client reference (name or hex id) from the path.
// References to existing clients and topics (paths, queries, attach lists)
// are checked with core's protocol rules only, not with the C2's stricter
// name policy (domain.ValidateClientName, domain.ValidateTopic, applied to
// names being created): a store may hold a name from before the policy,
// and the operator must still be able to look at it and remove it.
func clientParam(c echo.Context, name string) (string, error) {
	v, err := pathParam(c, name)
	if err != nil {
		return "", err
	}
	if err := core.ValidateName(v); err != nil {
		return "", fmt.Errorf("http: %s: %w", name, err)
	}
	return v, nil
}

// topicParam returns a topic name from the path.
func topicParam(c echo.Context) (string, error) {
	v, err := pathParam(c, "topic")
	if err != nil {
		return "", err
	}
	if err := core.ValidateTopic(v); err != nil {
		return "", fmt.Errorf("http: topic: %w", err)
	}
	return v, nil
}

// decodeJSON reads exactly one JSON object into v, refusing unknown fields
// and trailing data. Oversize bodies surface as *http.MaxBytesError (413);
// everything else malformed is a 400.
//
// The body must be valid UTF-8: encoding/json would silently replace
// invalid bytes in strings by U+FFFD, so a name could reach the C2 other
// than as it was sent.
func decodeJSON(r io.Reader, v any) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		var mbe *nethttp.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("invalid_body", "reading the request body failed")
	}
	if !utf8.Valid(raw) {
		return badRequest("invalid_utf8", "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *nethttp.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return badRequest("invalid_json", "empty request body")
		}
		return &apiError{status: nethttp.StatusBadRequest, code: "invalid_json", msg: "malformed JSON body", err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *nethttp.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("invalid_json", "trailing data after the JSON body")
	}
	return nil
}

func (s *Server) bind(c echo.Context, v any) error {
	return decodeJSON(c.Request().Body, v)
}

// pageRequest reads cursor and limit: limit defaults to DefaultPageSize and
// is clamped to MaxPageSize; the cursor is this package's opaque wrapping
// of the backend's own.
func (s *Server) pageRequest(c echo.Context) (PageRequest, error) {
	p := PageRequest{Limit: s.cfg.DefaultPageSize}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return p, badRequest("invalid_limit", "limit must be a positive integer")
		}
		p.Limit = min(n, s.cfg.MaxPageSize)
	}
	if cur := c.QueryParam("cursor"); cur != "" {
		raw, err := decodeCursor(cur)
		if err != nil {
			return p, err
		}
		p.Cursor = raw
	}
	return p, nil
}

// cursorPrefix versions the opaque cursor format.
const cursorPrefix = "c1."

func encodeCursor(raw string) string {
	if raw == "" {
		return ""
	}
	return cursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(cur string) (string, error) {
	if len(cur) <= len(cursorPrefix) || cur[:len(cursorPrefix)] != cursorPrefix {
		return "", badRequest("invalid_cursor", "malformed cursor")
	}
	b, err := base64.RawURLEncoding.DecodeString(cur[len(cursorPrefix):])
	if err != nil || len(b) == 0 {
		return "", badRequest("invalid_cursor", "malformed cursor")
	}
	return string(b), nil
}

func writePage[T any](c echo.Context, p Page[T]) error {
	items := p.Items
	if items == nil {
		items = []T{}
	}
	return c.JSON(nethttp.StatusOK, apitypes.Page[T]{Items: items, Next: encodeCursor(p.Next)})
}

// ---- clients ---------------------------------------------------------------

// newClientRequest validates the body of POST /clients (keys in lowercase
// or uppercase hex) and decodes it for the backend; it never echoes key
// bytes in errors.
func newClientRequest(b apitypes.NewClient) (NewClientRequest, error) {
	var r NewClientRequest
	if b.Name == "" && b.ID == "" {
		return r, badRequest("invalid_name", "name or id is required")
	}
	if b.Name != "" {
		if err := domain.ValidateClientName(b.Name); err != nil {
			return r, fmt.Errorf("http: name: %w", err)
		}
		r.Name = b.Name
	}
	if b.ID != "" {
		id, err := hex.DecodeString(b.ID)
		if err != nil || len(id) != core.IDLen {
			return r, badRequest("invalid_id", "id must be %d bytes of hex", core.IDLen)
		}
		if b.Name != "" && !bytes.Equal(id, core.HashID([]byte(b.Name))) {
			return r, badRequest("invalid_id", "id does not match the name")
		}
		r.ID = id
	}
	switch {
	case b.Key != "" && b.PublicKey != "":
		return r, badRequest("invalid_key", "give key or public_key, not both")
	case b.Key == "" && b.PublicKey == "":
		return r, badRequest("invalid_key", "key (SK) or public_key (PK) is required")
	case b.Key != "":
		k, err := hex.DecodeString(b.Key)
		if err != nil {
			return r, badRequest("invalid_key", "key is not hex")
		}
		r.Key = k
	default:
		k, err := hex.DecodeString(b.PublicKey)
		if err != nil {
			return r, badRequest("invalid_key", "public_key is not hex")
		}
		r.PublicKey = k
	}
	r.Replace = b.Replace
	switch b.Role {
	case "", "both", "publisher", "consumer":
		r.Role = b.Role
	default:
		return r, badRequest("invalid_role", "role must be publisher, consumer or both")
	}
	return r, nil
}

func (s *Server) newClient(c echo.Context) error {
	var b apitypes.NewClient
	if err := s.bind(c, &b); err != nil {
		return err
	}
	req, err := newClientRequest(b)
	if err != nil {
		return err
	}
	cl, err := s.backend.NewClient(c.Request().Context(), caller(c), req)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusCreated, cl)
}

func (s *Server) listClients(c echo.Context) error {
	p, err := s.pageRequest(c)
	if err != nil {
		return err
	}
	page, err := s.backend.Clients(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return writePage(c, page)
}

func (s *Server) countClients(c echo.Context) error {
	n, err := s.backend.CountClients(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, apitypes.Count{Count: n})
}

func (s *Server) getClient(c echo.Context) error {
	ref, err := clientParam(c, "client")
	if err != nil {
		return err
	}
	cl, err := s.backend.Client(c.Request().Context(), ref)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, cl)
}

// clientOp runs a backend operation on the client of the path.
func (s *Server) clientOp(c echo.Context, op func(Caller, string) error) error {
	ref, err := clientParam(c, "client")
	if err != nil {
		return err
	}
	if err := op(caller(c), ref); err != nil {
		return err
	}
	return c.NoContent(nethttp.StatusNoContent)
}

func (s *Server) removeClient(c echo.Context) error {
	reset := false
	if v := c.QueryParam("reset_topics"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return badRequest("invalid_query", "reset_topics must be true or false")
		}
		reset = b
	}
	return s.clientOp(c, func(by Caller, ref string) error {
		return s.backend.RemoveClient(c.Request().Context(), by, ref, reset)
	})
}

// boolQuery reads an optional true/false query parameter.
func boolQuery(c echo.Context, name string) (bool, error) {
	v := c.QueryParam(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("invalid_query", "%s must be true or false", name)
	}
	return b, nil
}

func (s *Server) resyncClient(c echo.Context) error {
	full, err := boolQuery(c, "full")
	if err != nil {
		return err
	}
	ref, err := clientParam(c, "client")
	if err != nil {
		return err
	}
	n, err := s.backend.Resync(c.Request().Context(), caller(c), ref, full)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, ResyncResult{Client: ref, Queued: n})
}

func (s *Server) releaseClient(c echo.Context) error {
	ref, err := clientParam(c, "client")
	if err != nil {
		return err
	}
	r, err := s.backend.Release(c.Request().Context(), caller(c), ref)
	if err != nil {
		return err
	}
	r.Client = ref
	return c.JSON(nethttp.StatusOK, r)
}

func (s *Server) releaseAll(c echo.Context) error {
	r, err := s.backend.ReleaseAll(c.Request().Context(), caller(c))
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, r)
}

func (s *Server) resyncAll(c echo.Context) error {
	full, err := boolQuery(c, "full")
	if err != nil {
		return err
	}
	n, err := s.backend.ResyncAll(c.Request().Context(), caller(c), full)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, ResyncResult{Queued: n})
}

func (s *Server) fleet(c echo.Context) error {
	f, err := s.backend.Fleet(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, f)
}

func (s *Server) newClientKey(c echo.Context) error {
	return s.clientOp(c, func(by Caller, ref string) error {
		return s.backend.NewClientKey(c.Request().Context(), by, ref)
	})
}

func (s *Server) resetClient(c echo.Context) error {
	return s.clientOp(c, func(by Caller, ref string) error {
		return s.backend.ResetClient(c.Request().Context(), by, ref)
	})
}

func (s *Server) resetPubKeys(c echo.Context) error {
	return s.clientOp(c, func(by Caller, ref string) error {
		return s.backend.ResetClientPubKeys(c.Request().Context(), by, ref)
	})
}

func (s *Server) clientTopics(c echo.Context) error {
	ref, err := clientParam(c, "client")
	if err != nil {
		return err
	}
	p, err := s.pageRequest(c)
	if err != nil {
		return err
	}
	page, err := s.backend.ClientTopics(c.Request().Context(), ref, p)
	if err != nil {
		return err
	}
	return writePage(c, page)
}

// linkOp runs a backend operation on the client and topic of the path.
func (s *Server) linkOp(c echo.Context, op func(by Caller, client, topic string) error) error {
	ref, err := clientParam(c, "client")
	if err != nil {
		return err
	}
	topic, err := topicParam(c)
	if err != nil {
		return err
	}
	if err := op(caller(c), ref, topic); err != nil {
		return err
	}
	return c.NoContent(nethttp.StatusNoContent)
}

func (s *Server) attach(c echo.Context) error {
	return s.linkOp(c, func(by Caller, client, topic string) error {
		return s.backend.AttachClient(c.Request().Context(), by, client, topic)
	})
}

func (s *Server) detach(c echo.Context) error {
	return s.linkOp(c, func(by Caller, client, topic string) error {
		return s.backend.DetachClient(c.Request().Context(), by, client, topic)
	})
}

// pubKeyOp runs a backend operation on the destination and source clients.
func (s *Server) pubKeyOp(c echo.Context, op func(by Caller, dst, src string) error) error {
	dst, err := clientParam(c, "client")
	if err != nil {
		return err
	}
	src, err := clientParam(c, "source")
	if err != nil {
		return err
	}
	if err := op(caller(c), dst, src); err != nil {
		return err
	}
	return c.NoContent(nethttp.StatusNoContent)
}

func (s *Server) sendPubKey(c echo.Context) error {
	return s.pubKeyOp(c, func(by Caller, dst, src string) error {
		return s.backend.SendClientPubKey(c.Request().Context(), by, dst, src)
	})
}

func (s *Server) removePubKey(c echo.Context) error {
	return s.pubKeyOp(c, func(by Caller, dst, src string) error {
		return s.backend.RemoveClientPubKey(c.Request().Context(), by, dst, src)
	})
}

// ---- topics ----------------------------------------------------------------

func (s *Server) newTopic(c echo.Context) error {
	var b apitypes.NewTopic
	if err := s.bind(c, &b); err != nil {
		return err
	}
	if err := domain.ValidateTopic(b.Topic); err != nil {
		return fmt.Errorf("http: topic: %w", err)
	}
	rotated, err := s.backend.NewTopic(c.Request().Context(), caller(c), b.Topic)
	if err != nil {
		return err
	}
	status := nethttp.StatusCreated
	if rotated {
		status = nethttp.StatusOK
	}
	return c.JSON(status, apitypes.TopicResult{Topic: b.Topic, Rotated: rotated})
}

// rotateTopic gives an existing topic a new key. It is its own route so
// that creating a topic (POST /topics) never rotates one by accident.
func (s *Server) rotateTopic(c echo.Context) error {
	topic, err := topicParam(c)
	if err != nil {
		return err
	}
	if err := s.backend.RotateTopic(c.Request().Context(), caller(c), topic); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, apitypes.TopicResult{Topic: topic, Rotated: true})
}

func (s *Server) listTopics(c echo.Context) error {
	p, err := s.pageRequest(c)
	if err != nil {
		return err
	}
	page, err := s.backend.Topics(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return writePage(c, page)
}

func (s *Server) getC2Key(c echo.Context) error {
	k, err := s.backend.C2PublicKey(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, k)
}

func (s *Server) countTopics(c echo.Context) error {
	n, err := s.backend.CountTopics(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, apitypes.Count{Count: n})
}

func (s *Server) getTopic(c echo.Context) error {
	topic, err := topicParam(c)
	if err != nil {
		return err
	}
	t, err := s.backend.Topic(c.Request().Context(), topic)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, t)
}

func (s *Server) removeTopic(c echo.Context) error {
	topic, err := topicParam(c)
	if err != nil {
		return err
	}
	if err := s.backend.RemoveTopic(c.Request().Context(), caller(c), topic); err != nil {
		return err
	}
	return c.NoContent(nethttp.StatusNoContent)
}

func (s *Server) topicClients(c echo.Context) error {
	topic, err := topicParam(c)
	if err != nil {
		return err
	}
	p, err := s.pageRequest(c)
	if err != nil {
		return err
	}
	page, err := s.backend.TopicClients(c.Request().Context(), topic, p)
	if err != nil {
		return err
	}
	return writePage(c, page)
}

func (s *Server) protect(c echo.Context) error {
	topic, err := topicParam(c)
	if err != nil {
		return err
	}
	var b apitypes.ProtectRequest
	if err := s.bind(c, &b); err != nil {
		return err
	}
	out, err := s.backend.Protect(c.Request().Context(), caller(c), topic, b.Payload)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, apitypes.ProtectResponse{Protected: out})
}

func (s *Server) unprotect(c echo.Context) error {
	topic, err := topicParam(c)
	if err != nil {
		return err
	}
	var b apitypes.UnprotectRequest
	if err := s.bind(c, &b); err != nil {
		return err
	}
	if len(b.Protected) == 0 {
		return badRequest("invalid_protected", "protected is required")
	}
	out, err := s.backend.Unprotect(c.Request().Context(), caller(c), topic, b.Protected)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, apitypes.UnprotectResponse{Payload: out})
}

// ---- C2 key, batches -------------------------------------------------------

func (s *Server) newC2Key(c echo.Context) error {
	if err := s.backend.NewC2Key(c.Request().Context(), caller(c)); err != nil {
		return err
	}
	return c.NoContent(nethttp.StatusNoContent)
}

// checkBatch bounds a batch: at most MaxPageSize valid client references.
func (s *Server) checkBatch(clients []string) error {
	if len(clients) == 0 {
		return badRequest("invalid_batch", "clients is empty")
	}
	if len(clients) > s.cfg.MaxPageSize {
		return badRequest("invalid_batch", "at most %d clients per batch", s.cfg.MaxPageSize)
	}
	for i, cl := range clients {
		if err := core.ValidateName(cl); err != nil {
			return fmt.Errorf("http: clients[%d]: %w", i, err)
		}
	}
	return nil
}

// runBatch applies op to every client, one at a time and in order, and
// reports each outcome. Each item is its own operation (and its own
// events): a failure does not undo the others.
func (s *Server) runBatch(c echo.Context, clients []string, op func(Caller, string) error) error {
	res := apitypes.BatchResult{Results: make([]apitypes.BatchItem, 0, len(clients))}
	by := caller(c)
	for _, cl := range clients {
		if err := c.Request().Context().Err(); err != nil {
			return err
		}
		item := apitypes.BatchItem{Client: cl, OK: true}
		if err := op(by, cl); err != nil {
			status, code, msg := classify(err)
			if status >= 500 {
				s.logItemError(c, err)
			}
			item.OK = false
			item.Error = &apitypes.ErrorDetail{Code: code, Message: msg}
			res.Failed++
		} else {
			res.Succeeded++
		}
		res.Results = append(res.Results, item)
	}
	return c.JSON(nethttp.StatusOK, res)
}

func (s *Server) batchAttach(c echo.Context) error {
	var b apitypes.BatchAttach
	if err := s.bind(c, &b); err != nil {
		return err
	}
	if err := core.ValidateTopic(b.Topic); err != nil {
		return fmt.Errorf("http: topic: %w", err)
	}
	if err := s.checkBatch(b.Clients); err != nil {
		return err
	}
	if ba, ok := s.backend.(BatchAttacher); ok {
		// Fast path: one decision for the whole batch. If it is refused
		// (one unknown client...), nothing was applied: retry one by one to
		// tell which items fail.
		if err := ba.AttachClients(c.Request().Context(), caller(c), b.Topic, b.Clients); err == nil {
			res := apitypes.BatchResult{Succeeded: len(b.Clients), Results: make([]apitypes.BatchItem, len(b.Clients))}
			for i, cl := range b.Clients {
				res.Results[i] = apitypes.BatchItem{Client: cl, OK: true}
			}
			return c.JSON(nethttp.StatusOK, res)
		}
	}
	return s.runBatch(c, b.Clients, func(by Caller, cl string) error {
		return s.backend.AttachClient(c.Request().Context(), by, cl, b.Topic)
	})
}

func (s *Server) batchReset(c echo.Context) error {
	var b apitypes.BatchReset
	if err := s.bind(c, &b); err != nil {
		return err
	}
	if err := s.checkBatch(b.Clients); err != nil {
		return err
	}
	return s.runBatch(c, b.Clients, func(by Caller, cl string) error {
		return s.backend.ResetClient(c.Request().Context(), by, cl)
	})
}

// ---- audit, deliveries -----------------------------------------------------

func parseTimeParam(c echo.Context, name string) (time.Time, error) {
	v := c.QueryParam(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest("invalid_time", "%s must be an RFC 3339 time", name)
	}
	return t, nil
}

func (s *Server) audit(c echo.Context) error {
	p, err := s.pageRequest(c)
	if err != nil {
		return err
	}
	q := AuditQuery{Page: p, Client: c.QueryParam("client"), Topic: c.QueryParam("topic"),
		Actor: c.QueryParam("actor"), Type: c.QueryParam("type")}
	if q.Client != "" {
		if err := core.ValidateName(q.Client); err != nil {
			return fmt.Errorf("http: client: %w", err)
		}
	}
	if q.Topic != "" {
		if err := core.ValidateTopic(q.Topic); err != nil {
			return fmt.Errorf("http: topic: %w", err)
		}
	}
	if q.From, err = parseTimeParam(c, "from"); err != nil {
		return err
	}
	if q.To, err = parseTimeParam(c, "to"); err != nil {
		return err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		return badRequest("invalid_time", "to is before from")
	}
	page, err := s.backend.Audit(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return writePage(c, page)
}

func (s *Server) deliveries(c echo.Context) error {
	p, err := s.pageRequest(c)
	if err != nil {
		return err
	}
	client := c.QueryParam("client")
	if client != "" {
		if err := core.ValidateName(client); err != nil {
			return fmt.Errorf("http: client: %w", err)
		}
	}
	page, err := s.backend.PendingDeliveries(c.Request().Context(), client, p)
	if err != nil {
		return err
	}
	return writePage(c, page)
}

// ---- tokens and export -----------------------------------------------------

// apiToken is the public view of a token: neither its secret nor its hash.
func apiToken(t Token) apitypes.Token {
	return apitypes.Token{Name: t.Name, Role: string(t.Role), CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy}
}

// validTokenName keeps token names short and printable: they end up in
// every event's actor field and in logs.
func validTokenName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		b := n[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

// noStore keeps responses with secrets out of caches.
func noStore(c echo.Context) {
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
}

func (s *Server) createToken(c echo.Context) error {
	var b apitypes.NewToken
	if err := s.bind(c, &b); err != nil {
		return err
	}
	role := Role(b.Role)
	if !validTokenName(b.Name) {
		return badRequest("invalid_name", "token name must be 1..64 characters of [A-Za-z0-9._-]")
	}
	if !role.Valid() {
		return badRequest("invalid_role", "role must be admin, operator or reader")
	}
	secret, tok, err := s.backend.CreateToken(c.Request().Context(), caller(c), b.Name, role)
	if err != nil {
		return err
	}
	noStore(c)
	// The only response carrying a token secret.
	return c.JSON(nethttp.StatusCreated, apitypes.CreatedToken{Token: apiToken(tok), Secret: secret})
}

func (s *Server) listTokens(c echo.Context) error {
	ts, err := s.backend.Tokens(c.Request().Context())
	if err != nil {
		return err
	}
	list := apitypes.TokenList{Items: make([]apitypes.Token, len(ts))}
	for i, t := range ts {
		list.Items[i] = apiToken(t)
	}
	return c.JSON(nethttp.StatusOK, list)
}

func (s *Server) revokeToken(c echo.Context) error {
	name, err := pathParam(c, "name")
	if err != nil {
		return err
	}
	if !validTokenName(name) {
		return badRequest("invalid_name", "invalid token name")
	}
	if err := s.backend.RevokeToken(c.Request().Context(), caller(c), name); err != nil {
		return err
	}
	return c.NoContent(nethttp.StatusNoContent)
}

func (s *Server) exportClientKey(c echo.Context) error {
	ref, err := clientParam(c, "client")
	if err != nil {
		return err
	}
	k, err := s.backend.ExportClientKey(c.Request().Context(), caller(c), ref)
	if err != nil {
		return err
	}
	s.logExport(c, slog.String("client", ref))
	noStore(c)
	return c.JSON(nethttp.StatusOK, apitypes.ExportedKey{Client: ref, Key: hex.EncodeToString(k)})
}

func (s *Server) exportTopicKey(c echo.Context) error {
	topic, err := topicParam(c)
	if err != nil {
		return err
	}
	k, err := s.backend.ExportTopicKey(c.Request().Context(), caller(c), topic)
	if err != nil {
		return err
	}
	s.logExport(c, slog.String("topic", topic))
	noStore(c)
	return c.JSON(nethttp.StatusOK, apitypes.ExportedKey{Topic: topic, Key: hex.EncodeToString(k)})
}

// logItemError logs a 5xx failure of one batch item (the user sees only a
// generic message).
func (s *Server) logItemError(c echo.Context, err error) {
	s.log.LogAttrs(c.Request().Context(), slog.LevelError, "batch item failed",
		slog.String("request_id", requestID(c)), slog.String("error", err.Error()))
}

// logExport records every key export (who, what; never the key) at warning
// level so a SIEM can alert on it.
func (s *Server) logExport(c echo.Context, what slog.Attr) {
	s.log.LogAttrs(c.Request().Context(), slog.LevelWarn, "key exported",
		slog.String("request_id", requestID(c)), slog.String("actor", caller(c).Actor), what)
}
