package console_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/e4mqtt"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// screenshotDir, when set, receives PNGs of the main pages (see
// scripts/screenshots.sh).
const screenshotEnv = "E4C2_SCREENSHOTS"

// findBrowser returns a Chromium or Chrome binary, or "" (the browser
// tests then skip with a message saying how to install one).
func findBrowser() string {
	if p := os.Getenv("E4C2_CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// startServer runs a whole e4c2 (embedded store and broker, delivery,
// API and console) in a temporary directory and returns it with the first
// admin token.
func startServer(t *testing.T) (*server.Server, string) {
	t.Helper()
	return startServerWith(t, nil, io.Discard)
}

// startServerWith is startServer with the configuration changed by mut.
// Its JSON log goes to logOut.
func startServerWith(t *testing.T, mut func(*config.Config), logOut io.Writer) (*server.Server, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTPListen, cfg.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.AdminTokenFile = filepath.Join(dir, "admin.token")
	if mut != nil {
		mut(&cfg)
	}
	srv, err := server.Start(context.Background(), cfg, server.Options{Out: io.Discard, Logger: slog.New(slog.NewJSONHandler(logOut, nil))})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	tok, err := os.ReadFile(cfg.AdminTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return srv, strings.TrimSpace(string(tok))
}

// browser is a headless Chromium driven by chromedp, with the pages it
// saw (for the key-material scan).
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // screenshot directory, "" = none

	mu    sync.Mutex
	pages map[string]string // url -> HTML, as last seen
}

// requireBrowser skips the test, with how to install one, when there is
// no browser; it returns the browser's path.
func requireBrowser(t *testing.T) string {
	t.Helper()
	path := findBrowser()
	if path == "" {
		t.Skip("no Chromium/Chrome found: the console's browser tests need one (apt-get install -y chromium, or set E4C2_CHROME)")
	}
	return path
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := requireBrowser(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Skipf("Chromium at %s does not start headless here: %v", path, err)
	}
	return &browser{t: t, ctx: ctx, base: base, shot: os.Getenv(screenshotEnv), pages: map[string]string{}}
}

// do runs actions, failing the test with what was being done.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		text, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("main")))
		b.t.Fatalf("%s: %v\n(at %s)\n%s", what, err, loc, text)
	}
	b.capture()
}

// poll waits until a JavaScript expression is true on the page.
func (b *browser) poll(what, expr string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr)); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// open navigates to a console path and waits for sel.
func (b *browser) open(path, sel string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// text returns the text of the first node matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// capture keeps the current page's HTML for the key scan.
func (b *browser) capture() {
	loc, err1 := chromedp.Run(b.ctx, chromedp.Location())
	html, err2 := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err1 != nil || err2 != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pages[loc+fmt.Sprintf("#%d", len(b.pages))] = html
}

// screenshot writes the page as PNG when screenshots are asked for.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if b.shot == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(b.shot, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.shot, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// login logs in with a token through the login form.
func (b *browser) login(token string) {
	b.t.Helper()
	b.do("log in",
		chromedp.Navigate(b.base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#count-clients")))
}

func (b *browser) logout() {
	b.t.Helper()
	b.do("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#token")))
}

// device is a device-library client connected to the broker.
type device struct {
	c   *client.Client
	key []byte
}

// newDeviceKey makes the device's key (SK mode) before it is registered.
func newDeviceKey(t *testing.T, srv *server.Server, name string) *device {
	t.Helper()
	svc := srv.Service()
	key, err := svc.Suite().GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Suite: svc.Suite(), Mode: svc.Mode(), Name: name, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return &device{c: c, key: key}
}

// newPKDevice makes a PK device's signing identity (its private half is
// a secret the pages must not show).
func newPKDevice(t *testing.T, srv *server.Server, name string) (*device, []byte) {
	t.Helper()
	svc := srv.Service()
	id, err := svc.Suite().(core.PKSuite).GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Suite: svc.Suite(), Mode: svc.Mode(), Name: name, Key: id.Bytes(), C2PublicKey: svc.C2().PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	return &device{c: c, key: id.Bytes()}, id.PublicKey()
}

// connect connects a registered device to the embedded broker.
func (d *device) connect(t *testing.T, srv *server.Server) {
	t.Helper()
	dev, err := e4mqtt.Connect(context.Background(), d.c, e4mqtt.Config{BrokerURL: "tcp://" + srv.MQTTAddr(), CleanSession: true})
	if err != nil {
		t.Fatalf("connect device: %v", err)
	}
	t.Cleanup(dev.Close)
}

// topicKey is the device's key for a topic (nil: none).
func (d *device) topicKey(topic string) []byte {
	tk, ok := d.c.State().Topics[hex.EncodeToString(d.c.Suite().HashTopic(topic))]
	if !ok {
		return nil
	}
	return append([]byte(nil), tk.Key...)
}

// TestConsoleInBrowser drives the console in a real headless Chromium
// against a real server with a real device: log in, register a client,
// attach it, watch its confirmed key version appear, rotate the topic and
// see the new version reach the device, write a rule with a compile error
// then fix it, dry-run it against a past event, read the audit, travel in
// time, watch live events, create tokens, see a reader's pages offer no
// action, and be logged out when the token is revoked. Every page seen
// is scanned for the keys and secrets the test knows.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped in -short")
	}
	requireBrowser(t)
	srv, adminToken := startServer(t)
	svc := srv.Service()
	base := "http://" + srv.HTTPAddr()
	b := newBrowser(t, base)
	secrets := map[string][]byte{"admin token": []byte(adminToken)}

	// Log in: the root redirects to the console, which asks for a token.
	b.login(adminToken)
	if who := b.text("#whoami"); who != "token:admin" {
		t.Fatalf("logged in as %q", who)
	}

	// Register a client through the form; then the device connects.
	dev := newDeviceKey(t, srv, "sensor-1")
	secrets["device key"] = dev.key
	b.open("/ui/clients", "#new-client")
	b.do("register a client",
		chromedp.SendKeys(chromedp.CSS("#new-client-name"), "sensor-1"),
		chromedp.SendKeys(chromedp.CSS("#new-client-key"), hex.EncodeToString(dev.key)),
		chromedp.Click(chromedp.CSS("#new-client-submit")),
		chromedp.WaitVisible(chromedp.CSS("#client-id")))
	if _, err := svc.Client(c2.ByName("sensor-1")); err != nil {
		t.Fatalf("the client registered in the console is not in the C2: %v", err)
	}
	dev.connect(t, srv)

	// A topic, and the client attached to it.
	const topic = "plant/sensors"
	b.open("/ui/topics", "#new-topic")
	b.do("create a topic",
		chromedp.SendKeys(chromedp.CSS("#new-topic-name"), topic),
		chromedp.Click(chromedp.CSS("#new-topic-submit")),
		chromedp.WaitVisible(chromedp.CSS("#topic-version")))
	b.open("/ui/client?c=sensor-1", "#attach-form")
	b.do("attach",
		chromedp.SendKeys(chromedp.CSS("#attach-topic"), topic),
		chromedp.Click(chromedp.CSS("#attach-submit")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-topic="`+topic+`"]`)))
	ti, err := svc.Topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	v1 := ti.KeyVersion
	// The page refreshes its sync part by itself: the confirmed version
	// appears once the device's session took the key.
	b.do("see the confirmed key version",
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`td.confirmed[data-topic="%s"][data-version="%d"]`, topic, v1))))
	testwait.For(t, "the device to hold the topic key", func() bool { return dev.topicKey(topic) != nil })
	key1 := dev.topicKey(topic)
	secrets["topic key v1"] = key1
	b.screenshot("client")
	beforeRotation := time.Now().UTC()

	// Rotate the topic: the new version reaches the device.
	b.open("/ui/topic?t="+topic, "#rotate-topic")
	b.do("rotate the topic", chromedp.Click(chromedp.CSS("#rotate-topic")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	ti, err = svc.Topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	v2 := ti.KeyVersion
	if v2 <= v1 {
		t.Fatalf("rotation in the console did not rotate: version %d -> %d", v1, v2)
	}
	b.do("see the member confirm the new version",
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#members tr[data-client="sensor-1"] td.confirmed[data-version="%d"]`, v2))))
	b.screenshot("topic")
	b.open("/ui/client?c=sensor-1", fmt.Sprintf(`td.confirmed[data-topic="%s"][data-version="%d"]`, topic, v2))
	testwait.For(t, "the device to hold the new topic key", func() bool {
		k := dev.topicKey(topic)
		return k != nil && string(k) != string(key1)
	})
	secrets["topic key v2"] = dev.topicKey(topic)

	// A rule with a compile error, shown at its line and column; fixed,
	// dry-run against the past link event, saved and paused.
	linked := lastPosition(t, svc, "topic.client_linked.v1")
	b.open("/ui/rules/new", "#rule-form")
	b.do("a rule that does not compile",
		chromedp.SendKeys(chromedp.CSS("#rule-id"), "rotate-on-link"),
		chromedp.SendKeys(chromedp.CSS("#rule-trigger"), "event.type ==\n  == \"topic.client_linked.v1\""),
		chromedp.Click(chromedp.CSS("#rule-save")),
		chromedp.WaitVisible(chromedp.CSS("#rule-error-where")))
	if where := b.text("#rule-error-where"); !strings.Contains(where, "trigger.event: line 2, column") {
		t.Fatalf("compile error shown as %q, want its line and column", where)
	}
	if ex := b.text("#rule-error-excerpt"); !strings.Contains(ex, "== \"topic.client_linked.v1\"") || !strings.Contains(ex, "^") {
		t.Fatalf("compile error excerpt %q", ex)
	}
	b.screenshot("rule-error")
	b.do("fix the rule and dry-run it against the link event",
		chromedp.Clear(chromedp.CSS("#rule-trigger")),
		chromedp.SendKeys(chromedp.CSS("#rule-trigger"), `event.type == "topic.client_linked.v1"`),
		chromedp.SetValue(chromedp.CSS("#rule-sample"), fmt.Sprint(linked)),
		chromedp.Click(chromedp.CSS("#rule-dryrun")),
		chromedp.WaitVisible(chromedp.CSS("#plan-matched")))
	if m, tg := b.text("#plan-matched"), b.text("#plan-targets"); m != "true" || !strings.Contains(tg, topic) {
		t.Fatalf("dry run: matched %q, targets %q; want true and %s", m, tg, topic)
	}
	b.do("save the rule and pause it",
		chromedp.Click(chromedp.CSS("#rule-save")),
		chromedp.WaitVisible(chromedp.CSS("#rule-pause")),
		chromedp.Click(chromedp.CSS("#rule-pause")),
		chromedp.WaitVisible(chromedp.CSS("#rule-resume")))
	if st := b.text("#rule-status"); !strings.HasPrefix(st, "paused") {
		t.Fatalf("rule status %q after pause", st)
	}
	b.screenshot("rule")

	// The audit, filtered by actor: the console's actions are attributed
	// to the token that logged in.
	b.open("/ui/audit", "#audit-filter")
	b.do("filter the audit",
		chromedp.SendKeys(chromedp.CSS("#audit-actor"), "token:admin"),
		chromedp.SendKeys(chromedp.CSS("#audit-type"), "topic.key_rotated.v1"),
		chromedp.Click(chromedp.CSS("#audit-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#audit-entries tr[data-type="topic.key_rotated.v1"]`)))
	if actor := b.text(`#audit-entries tr[data-type="topic.key_rotated.v1"] td.actor`); actor != "token:admin" {
		t.Fatalf("rotation attributed to %q", actor)
	}
	b.screenshot("audit")

	// Time travel: before the rotation the device was confirmed at v1.
	b.open("/ui/timetravel", "#tt-form")
	b.do("travel back",
		chromedp.SendKeys(chromedp.CSS("#tt-name"), "sensor-1"),
		chromedp.SendKeys(chromedp.CSS("#tt-at"), beforeRotation.Format(time.RFC3339Nano)),
		chromedp.Click(chromedp.CSS("#tt-submit")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#tt-topics tr[data-topic="%s"] td.confirmed[data-version="%d"]`, topic, v1))))
	b.screenshot("timetravel")
	b.open("/ui/timetravel?kind=topic&name="+url.QueryEscape(topic)+"&at="+url.QueryEscape(beforeRotation.Format(time.RFC3339Nano)), "#tt-version")
	if v := b.text("#tt-version"); v != fmt.Sprint(v1) {
		t.Fatalf("topic as of before the rotation: version %s, want %d", v, v1)
	}
	// ... or as of a log position: the link on an audit entry.
	b.open("/ui/audit?type=topic.client_linked.v1", "#audit-entries")
	b.do("follow the link event to the state then",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#audit-entries a[href*="at=%d"]`, linked))),
		chromedp.WaitVisible(chromedp.CSS(`#tt-topics tr[data-topic="`+topic+`"]`)))

	// Attach many clients at once from the topic's page.
	for _, n := range []string{"bulk-1", "bulk-2"} {
		k, _ := svc.Suite().GenerateKey()
		if _, err := svc.NewClient(context.Background(), c2.Origin{Actor: "test"}, c2.ByName(n), k, domain.RoleBoth); err != nil {
			t.Fatal(err)
		}
		secrets["key of "+n] = k
	}
	b.open("/ui/topic?t="+url.QueryEscape(topic), "#attach-many")
	b.do("attach many",
		chromedp.SendKeys(chromedp.CSS("#attach-many-clients"), "bulk-1\nbulk-2"),
		chromedp.Click(chromedp.CSS("#attach-many-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#members tr[data-client="bulk-2"]`)))
	if ci, _ := svc.Client(c2.ByName("bulk-1")); ci.Topics != 1 {
		t.Fatal("attach many did not link bulk-1")
	}

	// Live events: a change made elsewhere shows up on the open page.
	b.open("/ui/events", "#live-events")
	b.poll("stream connected", `document.getElementById("stream-status").textContent === "live"`)
	if _, err := svc.NewTopic(context.Background(), c2.Origin{Actor: "test"}, "live/appears"); err != nil {
		t.Fatal(err)
	}
	b.poll("see the live event", `[...document.querySelectorAll("#live-events td")].some(td => td.textContent === "live/appears")`)
	b.screenshot("events")
	b.open("/ui/", "#count-clients")
	if n := b.text("#count-clients"); n != "3" {
		t.Fatalf("overview counts %s clients", n)
	}
	b.screenshot("overview")
	b.open("/ui/clients", "#client-list")
	if st := b.text(`#client-list tr[data-client="sensor-1"] td.status`); st != "in_sync" {
		t.Fatalf("the clients list says sensor-1 is %q", st)
	}
	b.screenshot("clients")

	// Tokens: an operator and a reader, each secret shown once.
	opsToken := b.createToken("ops", "operator")
	readerToken := b.createToken("viewer", "reader")
	secrets["ops token"], secrets["reader token"] = []byte(opsToken), []byte(readerToken)
	b.open("/ui/tokens", "#token-list") // the list: no secret in the picture
	b.screenshot("tokens")

	// A cross-site form post is refused (and changes nothing).
	b.crossSitePost(t, "sensor-1")
	if _, err := svc.Client(c2.ByName("sensor-1")); err != nil {
		t.Fatalf("a cross-site post removed the client: %v", err)
	}

	// Destructive actions go through a confirmation naming the change.
	b.open("/ui/client?c=sensor-1", "#reset")
	b.do("ask to reset", chromedp.Click(chromedp.CSS("#reset")), chromedp.WaitVisible(chromedp.CSS("#confirm-impact")))
	if impact := b.text("#confirm-impact"); !strings.Contains(impact, "1 device (sensor-1) will receive ResetTopics") {
		t.Fatalf("confirmation says %q", impact)
	}
	b.screenshot("confirm")
	b.do("cancel", chromedp.Click(chromedp.CSS("#confirm-cancel")), chromedp.WaitVisible(chromedp.CSS("#client-id")))

	// A reader sees no button that would fail.
	b.logout()
	b.login(readerToken)
	b.open("/ui/client?c=sensor-1", "#client-id")
	b.do("no actions for a reader",
		chromedp.WaitNotPresent(chromedp.CSS("#attach-form")),
		chromedp.WaitNotPresent(chromedp.CSS("#reset")),
		chromedp.WaitNotPresent(chromedp.CSS("button[data-detach]")))
	b.open("/ui/topics", "#topic-list")
	b.do("no new topic for a reader", chromedp.WaitNotPresent(chromedp.CSS("#new-topic")))
	b.logout()

	// Revoking the token ends its session.
	// The open live-event page notices by itself (its stream checks the
	// token) and goes to the login page; the next request is refused too.
	b.login(opsToken)
	b.open("/ui/events", "#live-events")
	b.poll("stream connected", `document.getElementById("stream-status").textContent === "live"`)
	if _, err := svc.RevokeToken(context.Background(), c2.Origin{Actor: "test"}, "ops"); err != nil {
		t.Fatal(err)
	}
	b.do("be sent to the login page", chromedp.WaitVisible(chromedp.CSS("#login-message")))
	if msg := b.text("#login-message"); !strings.Contains(msg, "revoked") {
		t.Fatalf("after revocation the login page says %q", msg)
	}
	b.do("stay logged out", chromedp.Navigate(base+"/ui/clients"), chromedp.WaitVisible(chromedp.CSS("#token")))

	// No page showed a key or a secret (a token's secret only on the page
	// that created it).
	b.scan(t, secrets)
}

// createToken creates a token on the tokens page and reads its secret.
func (b *browser) createToken(name, role string) string {
	b.t.Helper()
	b.open("/ui/tokens", "#new-token-form")
	b.do("create token "+name,
		chromedp.SendKeys(chromedp.CSS("#new-token-name"), name),
		chromedp.SetValue(chromedp.CSS("#new-token-role"), role),
		chromedp.Click(chromedp.CSS("#new-token-submit")),
		chromedp.WaitVisible(chromedp.CSS("#new-token-secret")))
	secret := strings.TrimSpace(b.text("#new-token-secret"))
	if secret == "" {
		b.t.Fatal("no secret shown for a new token")
	}
	b.mu.Lock()
	for k, html := range b.pages {
		if strings.Contains(html, secret) {
			delete(b.pages, k) // the one page allowed to show it
		}
	}
	b.mu.Unlock()
	return secret
}

// crossSitePost makes the logged-in browser submit a form from another
// site (another origin, another host name) to the console: it must be
// refused.
func (b *browser) crossSitePost(t *testing.T, client string) {
	t.Helper()
	evil := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/ui/client/remove">
<input name="client" value="%s"><input name="confirm" value="yes"><input name="csrf" value="guess">
<button id="go">go</button></form>`, b.base, client)
	}))
	defer evil.Close()
	// "localhost" is another site than the console's 127.0.0.1.
	u := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	b.do("post from another site",
		chromedp.Navigate(u),
		chromedp.WaitVisible(chromedp.CSS("#go")),
		chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitVisible(chromedp.CSS("#error-message")))
	if msg := b.text("#error-message"); !strings.Contains(msg, "cross-site") {
		t.Fatalf("a cross-site post got %q", msg)
	}
}

// scan fails if any captured page holds a secret, in hex or base64.
func (b *browser) scan(t *testing.T, secrets map[string][]byte) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pages) < 10 {
		t.Fatalf("only %d pages captured", len(b.pages))
	}
	for what, s := range secrets {
		if len(s) == 0 {
			t.Fatalf("no %s to scan for", what)
		}
		forms := []string{string(s), hex.EncodeToString(s), strings.ToUpper(hex.EncodeToString(s)),
			base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s)}
		for url, html := range b.pages {
			for _, f := range forms {
				if len(f) >= 16 && strings.Contains(html, f) {
					t.Errorf("page %s shows the %s", url, what)
				}
			}
		}
	}
}

// lastPosition is the position of the newest audit entry of a type.
func lastPosition(t *testing.T, svc *c2.Service, typ string) uint64 {
	t.Helper()
	var pos uint64
	es, _ := svc.Audit(projections.AuditQuery{Type: typ, Limit: 10000})
	for _, e := range es {
		pos = e.Position
	}
	if pos == 0 {
		t.Fatalf("no %s in the audit", typ)
	}
	return pos
}

// TestConsoleInBrowserPK drives the PK parts of the console: register a
// device by its public key, send it another device's public key, see the
// C2 key's fingerprint, rotate the C2 key after a confirmation that counts
// the devices, and see which devices hold the new key.
func TestConsoleInBrowserPK(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped in -short")
	}
	requireBrowser(t)
	srv, adminToken := startServerWith(t, func(c *config.Config) { c.Mode = "pk" }, io.Discard)
	svc := srv.Service()
	b := newBrowser(t, "http://"+srv.HTTPAddr())
	b.login(adminToken)
	secrets := map[string][]byte{"admin token": []byte(adminToken)}

	devs := map[string]*device{}
	for _, name := range []string{"cam-1", "cam-2"} {
		d, pub := newPKDevice(t, srv, name)
		secrets["private key of "+name] = d.key
		b.open("/ui/clients", "#new-client")
		b.do("register "+name,
			chromedp.SendKeys(chromedp.CSS("#new-client-name"), name),
			chromedp.SendKeys(chromedp.CSS("#new-client-key"), hex.EncodeToString(pub)),
			chromedp.Click(chromedp.CSS("#new-client-submit")),
			chromedp.WaitVisible(chromedp.CSS("#client-id")))
		d.connect(t, srv)
		devs[name] = d
	}

	// Send cam-2's public key to cam-1.
	b.open("/ui/client?c=cam-1", "#pubkey-send")
	b.do("send a public key",
		chromedp.SendKeys(chromedp.CSS(`input[name="source"]`), "cam-2"),
		chromedp.Click(chromedp.CSS("#pubkey-send")),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	cam2 := hex.EncodeToString(devs["cam-2"].c.ID())
	testwait.For(t, "cam-1 to hold cam-2's public key", func() bool { return devs["cam-1"].c.State().PubKeys[cam2] != nil })
	b.do("see cam-1 confirm cam-2's public key",
		chromedp.WaitVisible(chromedp.CSS(`#client-pubkeys tr[data-peer="cam-2"] td.confirmed:not([data-version="0"])`)))
	b.screenshot("client-pk")

	// The C2 key: fingerprint, then a confirmed rotation.
	b.open("/ui/c2key", "#c2-fingerprint")
	if fp := b.text("#c2-fingerprint"); !strings.HasPrefix(fp, "SHA256:") {
		t.Fatalf("fingerprint %q", fp)
	}
	old := svc.C2().KeyVersion
	b.do("ask to rotate the C2 key", chromedp.Click(chromedp.CSS("#rotate-c2")), chromedp.WaitVisible(chromedp.CSS("#confirm-impact")))
	if impact := b.text("#confirm-impact"); !strings.Contains(impact, "2 devices will receive SetC2Key") {
		t.Fatalf("confirmation says %q", impact)
	}
	b.do("rotate", chromedp.Click(chromedp.CSS("#confirm-submit")), chromedp.WaitVisible(chromedp.CSS("#c2-fingerprint")))
	now := svc.C2().KeyVersion
	if now <= old {
		t.Fatalf("C2 key version %d -> %d", old, now)
	}
	newPub := svc.C2().PublicKey
	testwait.For(t, "both devices to hold the new C2 key", func() bool {
		return string(devs["cam-1"].c.State().C2PublicKey) == string(newPub) && string(devs["cam-2"].c.State().C2PublicKey) == string(newPub)
	})
	b.do("see both devices confirm the new C2 key", chromedp.Navigate(b.base+"/ui/c2key"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#c2-holders td.confirmed[data-version="%d"]`, now))))
	b.poll("both holders", fmt.Sprintf(`document.querySelectorAll('#c2-holders td.confirmed[data-version="%d"]').length === 2`, now))
	b.screenshot("c2key")
	b.scan(t, secrets)
}
