package c2_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// device opens a built command the way an SK device does.
func openSK(t *testing.T, e *env, key []byte, q projections.Queued) core.Command {
	t.Helper()
	topic, payload, err := e.svc.BuildCommand(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if topic != core.ControlTopic(q.Client[:]) {
		t.Fatalf("topic %q", topic)
	}
	plain, err := e.suite.Unprotect(key, payload, e.clock.Now(), core.Window{MaxAge: 3600e9})
	if err != nil {
		t.Fatalf("device cannot open %s: %v", q.Code, err)
	}
	cmd, err := core.DecodeCommand(plain, e.suite.Sizes(), core.SymKey)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

func TestSKLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	svc := e.svc
	keys := map[string][]byte{}
	for i, c := range []struct {
		name string
		role domain.Role
	}{{"pub", domain.RolePublisher}, {"both", domain.RoleBoth}, {"sub", domain.RoleConsumer}} {
		keys[c.name] = bytes.Repeat([]byte{byte(i + 1)}, 32)
		if _, err := svc.NewClient(ctx, sys, c2.ByName(c.name), keys[c.name], c.role); err != nil {
			t.Fatal(err)
		}
	}
	if svc.CountClients() != 3 {
		t.Fatalf("clients = %d", svc.CountClients())
	}
	res := must(svc.NewTopic(ctx, sys, "plant/a"))(t)
	if res.Version != 1 || res.Queued != 0 || res.Rotated {
		t.Fatalf("create %+v", res)
	}
	res = must(svc.AttachClients(ctx, sys, "plant/a", []c2.ClientRef{c2.ByName("pub"), c2.ByName("both"), c2.ByName("sub")}))(t)
	if res.Queued != 3 {
		t.Fatalf("attach %+v", res)
	}
	topicKey := must(svc.ExportTopicKey(ctx, sys, "plant/a"))(t)
	for name, k := range keys {
		p := pendingOf(t, svc, name)
		if len(p) != 1 {
			t.Fatalf("%s pending %d", name, len(p))
		}
		cmd := openSK(t, e, k, p[0])
		if cmd.Code != core.CmdSetTopicKey || !bytes.Equal(cmd.Key, topicKey) || !bytes.Equal(cmd.TopicHash, e.suite.HashTopic("plant/a")) {
			t.Fatalf("%s got %v", name, cmd.Code)
		}
		if err := svc.RecordDelivered(ctx, sys, p[0]); err != nil {
			t.Fatal(err)
		}
		if err := svc.RecordDelivered(ctx, sys, p[0]); !errors.Is(err, c2.ErrNotPending) {
			t.Fatalf("second record: %v", err)
		}
	}
	if svc.PendingCount() != 0 {
		t.Fatalf("pending %d", svc.PendingCount())
	}

	// Rotation: consumers first, then both, then publishers.
	res = must(svc.RotateTopic(ctx, sys, "plant/a"))(t)
	if res.Queued != 3 || !res.Rotated {
		t.Fatalf("rotate %+v", res)
	}
	order := svc.PendingAfter(0, 0)
	want := []string{"sub", "both", "pub"}
	if len(order) != len(want) {
		t.Fatalf("%d commands queued, want %d", len(order), len(want))
	}
	for i, q := range order {
		if q.Client != domain.ClientID(want[i]) {
			t.Fatalf("delivery %d goes to %s, want %s", i, q.Client, want[i])
		}
	}
	newTopicKey := must(svc.ExportTopicKey(ctx, sys, "plant/a"))(t)
	if bytes.Equal(newTopicKey, topicKey) {
		t.Fatal("rotation kept the key")
	}

	// new_client_key: SetIdKey under the OLD key, then the pending
	// SetTopicKey is still protected with the key the device has at that
	// point of its queue; commands queued later use the new one.
	res = must(svc.NewClientKey(ctx, sys, c2.ByName("sub")))(t)
	newSub := must(svc.ExportClientKey(ctx, sys, c2.ByName("sub")))(t)
	if bytes.Equal(newSub, keys["sub"]) {
		t.Fatal("client key not rotated")
	}
	p := pendingOf(t, svc, "sub")
	if len(p) != 2 || p[0].Code != core.CmdSetTopicKey || p[1].Code != core.CmdSetIDKey {
		t.Fatalf("sub queue %+v", p)
	}
	if cmd := openSK(t, e, keys["sub"], p[0]); !bytes.Equal(cmd.Key, newTopicKey) {
		t.Fatal("rotation carries the wrong key")
	}
	if cmd := openSK(t, e, keys["sub"], p[1]); cmd.Code != core.CmdSetIDKey || !bytes.Equal(cmd.Key, newSub) {
		t.Fatal("SetIdKey wrong")
	}
	must(svc.RemoveTopicClient(ctx, sys, c2.ByName("sub"), "plant/a"))(t)
	p = pendingOf(t, svc, "sub")
	if cmd := openSK(t, e, newSub, p[2]); cmd.Code != core.CmdRemoveTopic {
		t.Fatalf("got %v", cmd.Code)
	}
	if _, err := svc.RemoveTopicClient(ctx, sys, c2.ByName("sub"), "plant/a"); !errors.Is(err, domain.ErrNotLinked) {
		t.Fatalf("unlink twice: %v", err)
	}
	// Failing a command removes it too.
	if err := svc.RecordFailed(ctx, sys, p[0], "gave up"); err != nil {
		t.Fatal(err)
	}
	if len(pendingOf(t, svc, "sub")) != 2 {
		t.Fatal("failed command still pending")
	}

	// reset_client unlinks everywhere and sends ResetTopics.
	must(svc.ResetClient(ctx, sys, c2.ByName("both")))(t)
	if tp, _, _ := svc.ClientTopics(c2.ByName("both"), "", 10); len(tp) != 0 {
		t.Fatalf("both still has %d topics", len(tp))
	}
	p = pendingOf(t, svc, "both")
	if cmd := openSK(t, e, keys["both"], p[len(p)-1]); cmd.Code != core.CmdResetTopics {
		t.Fatalf("got %v", cmd.Code)
	}
	// remove_topic: RemoveTopic to the remaining member (pub).
	must(svc.RemoveTopic(ctx, sys, "plant/a"))(t)
	p = pendingOf(t, svc, "pub")
	if cmd := openSK(t, e, keys["pub"], p[len(p)-1]); cmd.Code != core.CmdRemoveTopic {
		t.Fatalf("got %v", cmd.Code)
	}
	if _, err := svc.Topic("plant/a"); !errors.Is(err, domain.ErrUnknownTopic) {
		t.Fatalf("topic after removal: %v", err)
	}
	// remove_client drops its queue.
	must(svc.RemoveClient(ctx, sys, c2.ByName("pub"), false))(t)
	if len(pendingOf(t, svc, "pub")) != 0 || svc.CountClients() != 2 {
		t.Fatal("removed client keeps state")
	}
	// Errors.
	checks := []struct {
		err  error
		want error
	}{
		{second(svc.RemoveClient(ctx, sys, c2.ByName("pub"), false)), domain.ErrUnknownClient},
		{second(svc.NewTopicClient(ctx, sys, c2.ByName("nobody"), "x")), domain.ErrUnknownTopic},
		{second(svc.RemoveTopic(ctx, sys, "plant/a")), domain.ErrUnknownTopic},
		{second(svc.NewTopic(ctx, sys, "bad/#")), core.ErrInvalidTopic},
		{second(svc.NewClient(ctx, sys, c2.ByName("x"), []byte{1}, 0)), core.ErrInvalidKey},
		{second(svc.NewC2Key(ctx, sys)), core.ErrUnsupportedOperation},
		{second(svc.SendClientPubKey(ctx, sys, c2.ByName("sub"), c2.ByName("both"))), core.ErrUnsupportedOperation},
		{second(svc.NewClient(ctx, sys, c2.ByID(domain.ID{}), nil, 0)), core.ErrInvalidKey},
	}
	for i, c := range checks {
		if !errors.Is(c.err, c.want) {
			t.Errorf("check %d: %v, want %v", i, c.err, c.want)
		}
	}
	must(svc.NewTopic(ctx, sys, "b"))(t)
	if _, err := svc.NewTopicClient(ctx, sys, c2.ByName("nobody"), "b"); !errors.Is(err, domain.ErrUnknownClient) {
		t.Fatalf("link unknown client: %v", err)
	}
	// Live state equals a replay.
	if got, want := e.rebuild(t, projections.AsOf{}), svc.KeyState().Snapshot(); !equalSnap(got, want) {
		t.Fatal("replay differs from live state")
	}
	// Audit: who did what, with key versions, never a key.
	entries, _ := svc.Audit(projections.AuditQuery{Client: ptr(domain.ClientID("sub")), Limit: 1000})
	if len(entries) < 5 {
		t.Fatalf("audit for sub: %d entries", len(entries))
	}
	for _, en := range entries {
		if en.Actor != "cli:test" && en.Actor != "system" {
			t.Fatalf("actor %q", en.Actor)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func ptr[T any](v T) *T { return &v }

func TestTokens(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	secret, _, err := e.svc.CreateToken(ctx, sys, "ci", domain.TokenOperator)
	if err != nil {
		t.Fatal(err)
	}
	ti, err := e.svc.VerifyToken(secret)
	if err != nil || ti.Name != "ci" || ti.Role != domain.TokenOperator {
		t.Fatalf("verify: %v %+v", err, ti)
	}
	if _, _, err := e.svc.CreateToken(ctx, sys, "ci", domain.TokenAdmin); !errors.Is(err, domain.ErrAlreadyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := e.svc.VerifyToken(secret + "x"); !errors.Is(err, domain.ErrUnknownToken) {
		t.Fatalf("wrong secret: %v", err)
	}
	must(e.svc.RevokeToken(ctx, sys, "ci"))(t)
	if _, err := e.svc.VerifyToken(secret); !errors.Is(err, domain.ErrUnknownToken) {
		t.Fatalf("revoked: %v", err)
	}
	// The log holds the hash, never the secret.
	recs, _ := e.store.ReadAll(ctx, 1, 100)
	for _, r := range recs {
		if bytes.Contains(r.Data, []byte(secret)) {
			t.Fatal("token secret in the log")
		}
	}
	// A revoked name is never reused: the audit's token:ci stays one token.
	if _, _, err := e.svc.CreateToken(ctx, sys, "ci", domain.TokenReader); !errors.Is(err, domain.ErrTokenNameRevoked) {
		t.Fatalf("recreate: %v", err)
	}
}

func TestNoKeyInLog(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	ck := bytes.Repeat([]byte{0x5A}, 32)
	must(e.svc.NewClient(ctx, sys, c2.ByName("a"), ck, 0))(t)
	must(e.svc.NewTopic(ctx, sys, "t"))(t)
	must(e.svc.NewTopicClient(ctx, sys, c2.ByName("a"), "t"))(t)
	must(e.svc.NewClientKey(ctx, sys, c2.ByName("a")))(t)
	tk := must(e.svc.ExportTopicKey(ctx, sys, "t"))(t)
	nk := must(e.svc.ExportClientKey(ctx, sys, c2.ByName("a")))(t)
	recs, _ := e.store.ReadAll(ctx, 1, 100)
	for _, r := range recs {
		for _, k := range [][]byte{ck, tk, nk} {
			if bytes.Contains(r.Data, k) {
				t.Fatalf("key in clear in %s", r.Type)
			}
		}
	}
}

func TestRestartKeepsState(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	must(e.svc.NewClient(ctx, sys, c2.ByName("a"), bytes.Repeat([]byte{1}, 32), 0))(t)
	must(e.svc.NewTopic(ctx, sys, "t"))(t)
	must(e.svc.NewTopicClient(ctx, sys, c2.ByName("a"), "t"))(t)
	before := e.svc.KeyState().Snapshot()
	e.svc.Close()
	svc2 := e.open(t)
	if !equalSnap(svc2.KeyState().Snapshot(), before) {
		t.Fatal("restart changed the state")
	}
	// And it keeps working: the restarted service decides on the loaded
	// versions.
	must(svc2.RotateTopic(ctx, sys, "t"))(t)
	if len(svc2.PendingFor(domain.ClientID("a"), 0)) != 2 {
		t.Fatal("rotation after restart not queued")
	}
	// A closed service refuses operations before touching the store.
	pos := svc2.Position()
	svc2.Close()
	if _, err := svc2.NewTopic(ctx, sys, "t"); !errors.Is(err, c2.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if recs, _ := e.store.ReadAll(ctx, pos+1, 10); len(recs) != 0 {
		t.Fatal("closed service appended")
	}
}

// TestOverwriteRetargetsQueue: a client.registered over an existing client
// (written by versions that let new_client overwrite silently) means the
// device was re-provisioned with the new key: its pending commands are
// protected with that key and a pending SetIdKey is dropped.
func TestOverwriteRetargetsQueue(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	svc := e.svc
	must(svc.NewClient(ctx, sys, c2.ByName("a"), bytes.Repeat([]byte{1}, 32), domain.RoleConsumer))(t)
	must(svc.NewTopic(ctx, sys, "t"))(t)
	must(svc.NewTopicClient(ctx, sys, c2.ByName("a"), "t"))(t)
	must(svc.NewClientKey(ctx, sys, c2.ByName("a")))(t)
	if p := pendingOf(t, svc, "a"); len(p) != 2 {
		t.Fatalf("pending %d", len(p))
	}
	fresh := bytes.Repeat([]byte{2}, 32)
	if _, err := svc.NewClient(ctx, sys, c2.ByName("a"), fresh, domain.RolePublisher); !errors.Is(err, domain.ErrClientExists) {
		t.Fatalf("new_client over an existing client: %v, want ErrClientExists", err)
	}
	must(svc.OverwriteClientForTest(ctx, sys, c2.ByName("a"), fresh, domain.RolePublisher))(t)
	p := pendingOf(t, svc, "a")
	if len(p) != 1 || p[0].Code != core.CmdSetTopicKey {
		t.Fatalf("pending after overwrite: %+v", p)
	}
	if cmd := openSK(t, e, fresh, p[0]); cmd.Code != core.CmdSetTopicKey {
		t.Fatal("not protected with the new key")
	}
	if ci := must(svc.Client(c2.ByName("a")))(t); ci.Role != domain.RolePublisher || ci.Topics != 1 || ci.Name != "a" {
		t.Fatalf("client after overwrite %+v", ci)
	}
	if got, want := e.rebuild(t, projections.AsOf{}), svc.KeyState().Snapshot(); !equalSnap(got, want) {
		t.Fatal("replay differs")
	}
}

// TestBuildUnbuildable: a sealed key that does not open (here: another
// master key) makes the command permanently unbuildable.
func TestBuildUnbuildable(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	must(e.svc.NewClient(ctx, sys, c2.ByName("a"), make([]byte, 32), 0))(t)
	must(e.svc.NewTopic(ctx, sys, "t"))(t)
	must(e.svc.NewTopicClient(ctx, sys, c2.ByName("a"), "t"))(t)
	q := pendingOf(t, e.svc, "a")[0]
	other, err := c2.New(c2.Config{Store: e.store, Sealer: wrongSealer{}, Suite: e.suite, Mode: core.SymKey})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, _, err := other.BuildCommand(ctx, q); !errors.Is(err, c2.ErrUnbuildable) {
		t.Fatalf("err = %v, want ErrUnbuildable", err)
	}
	// An unknown command code is unbuildable too.
	q.Code = 0x42
	if _, _, err := e.svc.BuildCommand(ctx, q); !errors.Is(err, c2.ErrUnbuildable) {
		t.Fatalf("err = %v", err)
	}
}

type wrongSealer struct{}

func (wrongSealer) Seal(p, ad []byte) ([]byte, error) { return nil, errors.New("no") }
func (wrongSealer) Open(s, ad []byte) ([]byte, error) { return nil, errors.New("does not open") }

func TestProtectUnprotectTopicTransition(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	must(e.svc.NewTopic(ctx, sys, "t"))(t)
	msg := must(e.svc.ProtectTopic(ctx, sys, "t", []byte("hello")))(t)
	if got := must(e.svc.UnprotectTopic(ctx, sys, "t", msg))(t); string(got) != "hello" {
		t.Fatalf("got %q", got)
	}
	must(e.svc.RotateTopic(ctx, sys, "t"))(t)
	// Within the transition period the previous key still opens it.
	if got := must(e.svc.UnprotectTopic(ctx, sys, "t", msg))(t); string(got) != "hello" {
		t.Fatalf("got %q", got)
	}
	fresh := must(e.svc.ProtectTopic(ctx, sys, "t", []byte("again")))(t)
	e.clock.Advance(61 * time.Minute)
	if _, err := e.svc.UnprotectTopic(ctx, sys, "t", msg); err == nil {
		t.Fatal("previous key accepted after the transition period")
	}
	if _, err := e.svc.UnprotectTopic(ctx, sys, "t", fresh); !errors.Is(err, core.ErrTimestampTooOld) {
		t.Fatalf("old message: %v", err)
	}
	if _, err := e.svc.ProtectTopic(ctx, sys, "nope", []byte("x")); !errors.Is(err, domain.ErrUnknownTopic) {
		t.Fatalf("unknown topic: %v", err)
	}
}

func TestPagination(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	svc := e.svc
	must(svc.NewTopic(ctx, sys, "t"))(t)
	var refs []c2.ClientRef
	for i := range 25 {
		refs = append(refs, c2.ByName(fmt.Sprintf("p%02d", i)))
		must(svc.NewClient(ctx, sys, refs[i], make([]byte, 32), 0))(t)
	}
	must(svc.RemoveClient(ctx, sys, refs[3], false))(t)
	must(svc.AttachClients(ctx, sys, "t", refs[5:]))(t)
	var seen []string
	cursor := ""
	for {
		page, next, err := svc.Clients(cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 7 {
			t.Fatalf("page of %d", len(page))
		}
		for _, c := range page {
			seen = append(seen, c.Name)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 24 || seen[3] != "p04" {
		t.Fatalf("paged clients %v", seen)
	}
	members, next, err := svc.TopicClients("t", "", 10)
	if err != nil || len(members) != 10 || next == "" {
		t.Fatalf("topic clients %d %q %v", len(members), next, err)
	}
	rest, next, _ := svc.TopicClients("t", next, 100)
	if len(rest) != 10 || next != "" {
		t.Fatalf("rest %d %q", len(rest), next)
	}
	must(svc.RotateTopic(ctx, sys, "t"))(t) // second command for each member
	q1, cur, err := svc.PendingPage(refs[5], "", 1)
	if err != nil || len(q1) != 1 || cur == "" {
		t.Fatalf("pending page %d %q %v", len(q1), cur, err)
	}
	q2, cur, _ := svc.PendingPage(refs[5], cur, 1)
	if len(q2) != 1 || q2[0].Seq() <= q1[0].Seq() || cur != "" {
		t.Fatalf("second page %v %q", q2, cur)
	}
	if _, _, err := svc.Clients("garbage", 1); !errors.Is(err, c2.ErrInvalidCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}
