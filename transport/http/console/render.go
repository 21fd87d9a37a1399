package console

import (
	"bytes"
	"fmt"
	"html/template"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// pageData is what every template receives.
type pageData struct {
	Title  string
	Nav    string
	User   *view
	CSRF   string
	Flash  string
	Error  bool
	Prefix string
	Data   any
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12] + "…"
		}
		return s
	},
	"q": url.QueryEscape,
	// link builds a console URL with query parameters (pairs of name and
	// value; empty values are left out).
	"link": func(p string, kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				v.Set(kv[i], kv[i+1])
			}
		}
		u := Prefix + p
		if len(v) > 0 {
			u += "?" + v.Encode()
		}
		return u
	},
	"eq2": func(a, b uint64) bool { return a == b },
	"lt":  func(a, b uint64) bool { return a < b },
}

// parseTemplates builds one template set per page: the layout plus the
// page's own file.
func parseTemplates() (map[string]*template.Template, error) {
	names, err := templateFS.ReadDir("templates")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(n.Name(), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", path.Join("templates", n.Name()))
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes a page with status 200.
func (c *Console) render(q *req, page, title string, data any) error {
	c.renderStatus(q, nethttp.StatusOK, page, title, data)
	return nil
}

// renderStatus executes a page into a buffer (so a template error is a
// clean 500, not half a page) and writes it.
func (c *Console) renderStatus(q *req, status int, page, title string, data any) {
	t, ok := c.pages[page]
	if !ok {
		nethttp.Error(q.w, "no such page", nethttp.StatusInternalServerError)
		return
	}
	pd := pageData{Title: title, Nav: page, Prefix: Prefix, Data: data}
	if q.s.TokenName != "" {
		v := q.s
		pd.User, pd.CSRF = &v, v.CSRF
		pd.Flash, pd.Error = c.sessions.takeFlash(v.key)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", pd); err != nil {
		c.log.LogAttrs(q.r.Context(), slog.LevelError, "console template failed",
			slog.String("page", page), slog.String("error", err.Error()))
		nethttp.Error(q.w, "internal error", nethttp.StatusInternalServerError)
		return
	}
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	q.w.WriteHeader(status)
	_, _ = q.w.Write(buf.Bytes())
}
