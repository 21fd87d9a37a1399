package console

import (
	nethttp "net/http"

	httpapi "github.com/e4c2/e4c2/transport/http"
)

type tokensData struct {
	Tokens  []httpapi.Token
	Created *httpapi.Token
	Secret  string // the new token's secret, on the page that created it only
}

// tokens lists the API tokens (never a secret).
func (c *Console) tokens(q *req) error {
	ts, err := c.api.Tokens(q.r.Context())
	if err != nil {
		return err
	}
	return c.render(q, "tokens", "Tokens", tokensData{Tokens: ts})
}

// createToken creates a token and shows its secret once, on this answer
// only (no redirect, no flash: the secret is in no session and no log).
func (c *Console) createToken(q *req) error {
	ctx := q.r.Context()
	secret, t, err := c.api.CreateToken(ctx, q.caller(), q.form("name"), httpapi.Role(q.form("role")))
	if err != nil {
		return q.failed(Prefix+"tokens", err)
	}
	ts, err := c.api.Tokens(ctx)
	if err != nil {
		return err
	}
	c.renderStatus(q, nethttp.StatusCreated, "tokens", "Tokens", tokensData{Tokens: ts, Created: &t, Secret: secret})
	return nil
}

// revokeToken revokes a token; its sessions end at their next request.
func (c *Console) revokeToken(q *req) error {
	name := q.form("name")
	if err := c.api.RevokeToken(q.r.Context(), q.caller(), name); err != nil {
		return q.failed(Prefix+"tokens", err)
	}
	return q.done(Prefix+"tokens", "token "+name+" revoked")
}
