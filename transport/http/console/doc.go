// Package console is the C2's web console: server-rendered pages
// (html/template) with a little script, served by `e4c2 serve` on the API
// listener under /ui/. Templates, the style sheet and the script are
// embedded (go:embed): no CDN, no Node toolchain.
//
// The console is part of the HTTP transport and calls the same Backend (and
// RuleBackend) as the JSON API, so every action goes through the same
// service calls and is attributed to the token that logged in
// ("token:<name>" in the audit), with a correlation id of its own.
//
// Security:
//   - Login exchanges an API token for a session: a random session id in a
//     cookie (HttpOnly, SameSite=Strict, Secure over TLS, Path=/ui/) with a
//     bounded lifetime. The server keeps only the SHA-256 of the session id
//     and of the token; every request looks the token up again, so a
//     revoked token ends its sessions at once.
//   - Every form carries a per-session CSRF token compared in constant
//     time; a request whose Sec-Fetch-Site or Origin says it comes from
//     another site is refused before that.
//   - Content-Security-Policy allows script, style and images from 'self'
//     only: no inline script, no inline style.
//   - The role decides what a page offers (a reader sees no button that
//     would fail) and, independently, what a POST may do.
//   - No page shows key material: clients, topics and the C2 key are shown
//     by name, id, version and public fingerprint only. The one exception
//     is the secret of a new API token, shown once on the page that created
//     it.
package console
