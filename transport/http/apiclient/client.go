package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// Prefix is the path prefix of every versioned API route.
const Prefix = "/api/v1"

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// Error is an error answered by the API: its HTTP status and the stable
// code and message of the JSON error body.
type Error struct {
	Status    int
	Code      string
	Message   string
	RequestID string
}

// Error returns the server's message (lower-case by the API's convention)
// with the code, e.g. "unknown client (unknown_client, HTTP 404)".
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = strings.ToLower(http.StatusText(e.Status))
	}
	if e.Code != "" {
		return fmt.Sprintf("%s (%s, HTTP %d)", msg, e.Code, e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, e.Status)
}

// Client talks to one C2 server with one token. It is safe for concurrent
// use.
type Client struct {
	base  string // scheme://host[:port][/prefix], no trailing slash
	token string
	hc    *http.Client
	// sse is used for the event stream: no overall timeout.
	sse *http.Client
	// onDrop is told why an event stream dropped before Events reconnects.
	onDrop func(error)
	// onAnswer is given the body of every successful JSON answer.
	onAnswer func(body []byte)
}

// Option configures New.
type Option func(*Client)

// WithHTTPClient replaces the HTTP client used for ordinary calls (the
// default has a 30 s timeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithStreamDropHandler sets a function told why the event stream dropped
// each time Events is about to reconnect (for a CLI to say so on stderr).
func WithStreamDropHandler(fn func(error)) Option { return func(c *Client) { c.onDrop = fn } }

// WithAnswerHook sets a function given the body of every successful JSON
// answer, exactly as the server sent it, before it is decoded. A CLI's
// --json prints it so that its output is the API's, not a re-encoding of
// the fields this package knows. The body may hold key material (key
// export): the hook must not log it.
func WithAnswerHook(fn func(body []byte)) Option { return func(c *Client) { c.onAnswer = fn } }

// New returns a client of the server at serverURL (e.g.
// "http://127.0.0.1:8080") authenticating with token (may be empty for
// health checks only).
func New(serverURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("apiclient: server url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("apiclient: server url %q must be http://host:port or https://host:port", serverURL)
	}
	if strings.ContainsAny(token, "\r\n") {
		return nil, errors.New("apiclient: token contains a line break")
	}
	c := &Client{
		base:  strings.TrimRight(u.String(), "/"),
		token: token,
		hc:    &http.Client{Timeout: 30 * time.Second},
		sse:   &http.Client{},
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// esc escapes one path segment: topics hold '/', which must reach the
// server as %2F.
func esc(s string) string { return url.PathEscape(s) }

func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("apiclient: encode body: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do sends a request and decodes a JSON answer into out (nil: none).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("apiclient: %s %s: %w", method, c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if c.onAnswer != nil {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("apiclient: read %s answer: %w", path, err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("apiclient: decode %s answer: %w", path, err)
		}
		c.onAnswer(b)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("apiclient: decode %s answer: %w", path, err)
	}
	return nil
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Status: resp.StatusCode}
	var body apitypes.Error
	if json.Unmarshal(b, &body) == nil {
		e.Code, e.Message, e.RequestID = body.Error.Code, body.Error.Message, body.Error.RequestID
	}
	return e
}

// IsStatus reports whether err is an API error with the given HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// pageQuery builds the cursor/limit query.
func pageQuery(cursor string, limit int) url.Values {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

// ---- health ----------------------------------------------------------------

// Ready calls /readyz: nil when the store and the broker are ready.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
}

// ---- clients ---------------------------------------------------------------

// NewClient is new_client: create a client (req.Replace: or replace the
// key of an existing one, keeping its role).
func (c *Client) NewClient(ctx context.Context, req NewClientRequest) (ClientInfo, error) {
	var out ClientInfo
	err := c.do(ctx, http.MethodPost, Prefix+"/clients", nil, req, &out)
	return out, err
}

// RemoveClient is remove_client.
func (c *Client) RemoveClient(ctx context.Context, client string) error {
	return c.do(ctx, http.MethodDelete, Prefix+"/clients/"+esc(client), nil, nil, nil)
}

// RotateClientKey is new_client_key (SK mode).
func (c *Client) RotateClientKey(ctx context.Context, client string) error {
	return c.do(ctx, http.MethodPost, Prefix+"/clients/"+esc(client)+"/key", nil, nil, nil)
}

// ResetClient is reset_client.
func (c *Client) ResetClient(ctx context.Context, client string) error {
	return c.do(ctx, http.MethodPost, Prefix+"/clients/"+esc(client)+"/reset", nil, nil, nil)
}

// GetClient returns a client by name or hex id.
func (c *Client) GetClient(ctx context.Context, client string) (ClientInfo, error) {
	var out ClientInfo
	err := c.do(ctx, http.MethodGet, Prefix+"/clients/"+esc(client), nil, nil, &out)
	return out, err
}

// GetClientJSON returns the API's JSON answer for a client, unchanged (the
// CLI's --json prints it as the server sent it).
func (c *Client) GetClientJSON(ctx context.Context, client string) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.do(ctx, http.MethodGet, Prefix+"/clients/"+esc(client), nil, nil, &out)
	return out, err
}

// Resync queues what the device lacks (full: every current key).
func (c *Client) Resync(ctx context.Context, client string, full bool) (ResyncResult, error) {
	var out ResyncResult
	err := c.do(ctx, http.MethodPost, Prefix+"/clients/"+esc(client)+"/resync", fullQuery(full), nil, &out)
	return out, err
}

// Release lets the commands of a device never seen go to an external broker.
func (c *Client) Release(ctx context.Context, client string) (ReleaseResult, error) {
	var out ReleaseResult
	err := c.do(ctx, http.MethodPost, Prefix+"/clients/"+esc(client)+"/release", nil, nil, &out)
	return out, err
}

// ReleaseAll releases every device neither seen nor released.
func (c *Client) ReleaseAll(ctx context.Context) (ReleaseResult, error) {
	var out ReleaseResult
	err := c.do(ctx, http.MethodPost, Prefix+"/release", nil, nil, &out)
	return out, err
}

// ResyncAll resyncs every client.
func (c *Client) ResyncAll(ctx context.Context, full bool) (ResyncResult, error) {
	var out ResyncResult
	err := c.do(ctx, http.MethodPost, Prefix+"/resync", fullQuery(full), nil, &out)
	return out, err
}

// Fleet returns the clients by sync status.
func (c *Client) Fleet(ctx context.Context) (FleetSummary, error) {
	var out FleetSummary
	err := c.do(ctx, http.MethodGet, Prefix+"/fleet", nil, nil, &out)
	return out, err
}

func fullQuery(full bool) url.Values {
	return url.Values{"full": {strconv.FormatBool(full)}}
}

// ListClients returns one page of clients.
func (c *Client) ListClients(ctx context.Context, cursor string, limit int) (Page[ClientInfo], error) {
	var out Page[ClientInfo]
	err := c.do(ctx, http.MethodGet, Prefix+"/clients", pageQuery(cursor, limit), nil, &out)
	return out, err
}

// CountClients returns the number of clients.
func (c *Client) CountClients(ctx context.Context) (int, error) {
	var out apitypes.Count
	err := c.do(ctx, http.MethodGet, Prefix+"/count/clients", nil, nil, &out)
	return out.Count, err
}

// ClientTopics returns one page of the topics of a client.
func (c *Client) ClientTopics(ctx context.Context, client, cursor string, limit int) (Page[Topic], error) {
	var out Page[Topic]
	err := c.do(ctx, http.MethodGet, Prefix+"/clients/"+esc(client)+"/topics", pageQuery(cursor, limit), nil, &out)
	return out, err
}

// Attach is new_topic_client.
func (c *Client) Attach(ctx context.Context, client, topic string) error {
	return c.do(ctx, http.MethodPut, Prefix+"/clients/"+esc(client)+"/topics/"+esc(topic), nil, nil, nil)
}

// Detach is remove_topic_client.
func (c *Client) Detach(ctx context.Context, client, topic string) error {
	return c.do(ctx, http.MethodDelete, Prefix+"/clients/"+esc(client)+"/topics/"+esc(topic), nil, nil, nil)
}

// ResetPubKeys is reset_client_pubkeys (PK mode).
func (c *Client) ResetPubKeys(ctx context.Context, client string) error {
	return c.do(ctx, http.MethodPost, Prefix+"/clients/"+esc(client)+"/pubkeys/reset", nil, nil, nil)
}

// SendPubKey is send_client_pubkey: send source's public key to client (PK).
func (c *Client) SendPubKey(ctx context.Context, client, source string) error {
	return c.do(ctx, http.MethodPut, Prefix+"/clients/"+esc(client)+"/pubkeys/"+esc(source), nil, nil, nil)
}

// RemovePubKey is remove_client_pubkey (PK mode).
func (c *Client) RemovePubKey(ctx context.Context, client, source string) error {
	return c.do(ctx, http.MethodDelete, Prefix+"/clients/"+esc(client)+"/pubkeys/"+esc(source), nil, nil, nil)
}

// ---- topics ----------------------------------------------------------------

// NewTopic is new_topic: it creates the topic. An existing topic is
// refused (409 topic_exists): RotateTopic rotates it.
func (c *Client) NewTopic(ctx context.Context, topic string) (TopicResult, error) {
	var out TopicResult
	err := c.do(ctx, http.MethodPost, Prefix+"/topics", nil, apitypes.NewTopic{Topic: topic}, &out)
	return out, err
}

// RotateTopic gives an existing topic a new key (SetTopicKey to each
// linked client); a missing topic is refused (404 unknown_topic).
func (c *Client) RotateTopic(ctx context.Context, topic string) (TopicResult, error) {
	var out TopicResult
	err := c.do(ctx, http.MethodPost, Prefix+"/topics/"+esc(topic)+"/rotate", nil, nil, &out)
	return out, err
}

// Raw sends a request and returns the API's JSON answer unchanged, so that
// the CLI's --json prints exactly what the server sent.
func (c *Client) Raw(ctx context.Context, method, path string, q url.Values, body any) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.do(ctx, method, path, q, body, &out)
	return out, err
}

// RemoveTopic is remove_topic.
func (c *Client) RemoveTopic(ctx context.Context, topic string) error {
	return c.do(ctx, http.MethodDelete, Prefix+"/topics/"+esc(topic), nil, nil, nil)
}

// GetTopic returns a topic.
func (c *Client) GetTopic(ctx context.Context, topic string) (Topic, error) {
	var out Topic
	err := c.do(ctx, http.MethodGet, Prefix+"/topics/"+esc(topic), nil, nil, &out)
	return out, err
}

// ListTopics returns one page of topics.
func (c *Client) ListTopics(ctx context.Context, cursor string, limit int) (Page[Topic], error) {
	var out Page[Topic]
	err := c.do(ctx, http.MethodGet, Prefix+"/topics", pageQuery(cursor, limit), nil, &out)
	return out, err
}

// CountTopics returns the number of topics.
func (c *Client) CountTopics(ctx context.Context) (int, error) {
	var out apitypes.Count
	err := c.do(ctx, http.MethodGet, Prefix+"/count/topics", nil, nil, &out)
	return out.Count, err
}

// TopicClients returns one page of the clients of a topic.
func (c *Client) TopicClients(ctx context.Context, topic, cursor string, limit int) (Page[ClientInfo], error) {
	var out Page[ClientInfo]
	err := c.do(ctx, http.MethodGet, Prefix+"/topics/"+esc(topic)+"/clients", pageQuery(cursor, limit), nil, &out)
	return out, err
}

// Protect protects payload with the topic's current key.
func (c *Client) Protect(ctx context.Context, topic string, payload []byte) ([]byte, error) {
	var out apitypes.ProtectResponse
	err := c.do(ctx, http.MethodPost, Prefix+"/topics/"+esc(topic)+"/protect", nil, apitypes.ProtectRequest{Payload: payload}, &out)
	return out.Protected, err
}

// Unprotect opens a message protected with the topic's key.
func (c *Client) Unprotect(ctx context.Context, topic string, protected []byte) ([]byte, error) {
	var out apitypes.UnprotectResponse
	err := c.do(ctx, http.MethodPost, Prefix+"/topics/"+esc(topic)+"/unprotect", nil, apitypes.UnprotectRequest{Protected: protected}, &out)
	return out.Payload, err
}

// ---- C2 key, batches, audit, deliveries ------------------------------------

// C2PublicKey returns the C2 public key (PK mode).
func (c *Client) C2PublicKey(ctx context.Context) (C2Key, error) {
	var out C2Key
	err := c.do(ctx, http.MethodGet, Prefix+"/c2key", nil, nil, &out)
	return out, err
}

// NewC2Key rotates the C2 key pair (PK mode).
func (c *Client) NewC2Key(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, Prefix+"/c2key", nil, nil, nil)
}

// BatchAttach links many clients to one topic.
func (c *Client) BatchAttach(ctx context.Context, topic string, clients []string) (BatchResult, error) {
	var out BatchResult
	body := apitypes.BatchAttach{Topic: topic, Clients: clients}
	err := c.do(ctx, http.MethodPost, Prefix+"/batch/attach", nil, body, &out)
	return out, err
}

// BatchReset resets many clients.
func (c *Client) BatchReset(ctx context.Context, clients []string) (BatchResult, error) {
	var out BatchResult
	body := apitypes.BatchReset{Clients: clients}
	err := c.do(ctx, http.MethodPost, Prefix+"/batch/reset", nil, body, &out)
	return out, err
}

// Audit returns one page of the audit trail.
func (c *Client) Audit(ctx context.Context, q AuditQuery) (Page[AuditEntry], error) {
	v := pageQuery(q.Cursor, q.Limit)
	for k, s := range map[string]string{"client": q.Client, "topic": q.Topic, "actor": q.Actor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.Format(time.RFC3339Nano))
	}
	var out Page[AuditEntry]
	err := c.do(ctx, http.MethodGet, Prefix+"/audit", v, nil, &out)
	return out, err
}

// Pending returns one page of the commands queued and not yet confirmed,
// for one client or (client "") all.
func (c *Client) Pending(ctx context.Context, client, cursor string, limit int) (Page[Delivery], error) {
	v := pageQuery(cursor, limit)
	if client != "" {
		v.Set("client", client)
	}
	var out Page[Delivery]
	err := c.do(ctx, http.MethodGet, Prefix+"/deliveries", v, nil, &out)
	return out, err
}

// ---- tokens and export -----------------------------------------------------

// CreateToken creates an API token; the secret is in the answer only.
func (c *Client) CreateToken(ctx context.Context, name, role string) (CreatedToken, error) {
	var out CreatedToken
	err := c.do(ctx, http.MethodPost, Prefix+"/tokens", nil, apitypes.NewToken{Name: name, Role: role}, &out)
	return out, err
}

// ListTokens lists the API tokens (no secrets).
func (c *Client) ListTokens(ctx context.Context) ([]Token, error) {
	var out apitypes.TokenList
	err := c.do(ctx, http.MethodGet, Prefix+"/tokens", nil, nil, &out)
	return out.Items, err
}

// RevokeToken revokes an API token.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, Prefix+"/tokens/"+esc(name), nil, nil, nil)
}

// ExportClientKey returns a client's key (admin only).
func (c *Client) ExportClientKey(ctx context.Context, client string) (ExportedKey, error) {
	var out ExportedKey
	err := c.do(ctx, http.MethodPost, Prefix+"/export/clients/"+esc(client), nil, nil, &out)
	return out, err
}

// ExportTopicKey returns a topic's key (admin only).
func (c *Client) ExportTopicKey(ctx context.Context, topic string) (ExportedKey, error) {
	var out ExportedKey
	err := c.do(ctx, http.MethodPost, Prefix+"/export/topics/"+esc(topic), nil, nil, &out)
	return out, err
}
