package c2_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// TestDevicesFollowC2 runs random operations against the service, delivers
// the queued commands (in the queue's order) to real devices of package
// client, and checks that every device ends with exactly the keys the C2
// state says it has: topic keys, identity key (SK), C2 public key and peer
// public keys (PK). This exercises the key versions chosen for protection
// (old client key for SetIdKey, old C2 pair for SetC2Key, the key the
// device holds at each point of its queue).
func TestDevicesFollowC2(t *testing.T) {
	for _, mode := range []core.Mode{core.SymKey, core.PubKey} {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("%s/seed%d", mode, seed), func(t *testing.T) { devicesFollowC2(t, mode, seed) })
		}
	}
}

func devicesFollowC2(t *testing.T, mode core.Mode, seed uint64) {
	ctx := context.Background()
	e := newEnv(t, mode)
	svc := e.svc
	pk, _ := e.suite.(core.PKSuite)
	rng := rand.New(rand.NewPCG(seed, uint64(mode)))
	devices := map[domain.ID]*client.Client{}
	names := map[domain.ID]string{}
	pubkeys := map[domain.ID]map[string][]byte{} // expected peer keys of PK devices
	signing := map[domain.ID][]byte{}

	newDevice := func(name string) {
		id := domain.ClientID(name)
		cfg := client.Config{Suite: e.suite, Mode: mode, Name: name, Clock: e.clock.Now}
		var reg []byte
		if mode == core.SymKey {
			cfg.Key = must(e.suite.GenerateKey())(t)
			reg = cfg.Key
		} else {
			ident := must(pk.GenerateIdentity())(t)
			cfg.Key, cfg.C2PublicKey, reg = ident.Bytes(), svc.C2().PublicKey, ident.PublicKey()
			signing[id] = ident.SigningPublicKey()
			pubkeys[id] = map[string][]byte{}
		}
		must(svc.NewClient(ctx, sys, c2.ByName(name), reg, domain.Role(1+rng.IntN(3))))(t)
		devices[id] = must(client.New(cfg))(t)
		names[id] = name
	}
	deliver := func() {
		for _, q := range svc.PendingAfter(0, 0) {
			topic, payload := must2(svc.BuildCommand(ctx, q))(t)
			dev := devices[q.Client]
			_, isCmd, err := dev.Unprotect(payload, topic)
			if q.Code == core.CmdRemovePubKey && errors.Is(err, core.ErrPubKeyNotFound) {
				err = nil // the device reports removing a key it does not have
			}
			if err != nil || !isCmd {
				t.Fatalf("device %s refuses %s: %v", names[q.Client], q.Code, err)
			}
			if err := svc.RecordDelivered(ctx, sys, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	someClient := func() (domain.ID, bool) {
		ids := slices.SortedFunc(maps.Keys(devices), func(a, b domain.ID) int { return bytes.Compare(a[:], b[:]) })
		if len(ids) == 0 {
			return domain.ID{}, false
		}
		return ids[rng.IntN(len(ids))], true
	}
	topic := func() string { return fmt.Sprintf("t/%d", rng.IntN(6)) }
	seq := 0
	for i := range 400 {
		id, ok := someClient()
		var err error
		switch op := rng.IntN(12); {
		case op < 2 || !ok:
			seq++
			newDevice(fmt.Sprintf("dev-%d", seq))
		case op == 2:
			_, err = svc.RemoveClient(ctx, sys, c2.ByID(id), false)
			delete(devices, id) // peers keep its key until told otherwise
		case op < 5:
			_, err = svc.NewTopic(ctx, sys, topic())
		case op == 5:
			if rng.IntN(3) == 0 {
				_, err = svc.RemoveTopic(ctx, sys, topic())
			}
		case op < 8:
			_, err = svc.NewTopicClient(ctx, sys, c2.ByID(id), topic())
		case op == 8:
			_, err = svc.RemoveTopicClient(ctx, sys, c2.ByID(id), topic())
		case op == 9:
			_, err = svc.ResetClient(ctx, sys, c2.ByID(id))
		case mode == core.SymKey:
			_, err = svc.NewClientKey(ctx, sys, c2.ByID(id))
		default:
			src, _ := someClient()
			switch rng.IntN(4) {
			case 0:
				if _, err = svc.SendClientPubKey(ctx, sys, c2.ByID(id), c2.ByID(src)); err == nil {
					pubkeys[id][hex.EncodeToString(src[:])] = signing[src]
				}
			case 1:
				if _, err = svc.RemoveClientPubKey(ctx, sys, c2.ByID(id), c2.ByID(src)); err == nil {
					delete(pubkeys[id], hex.EncodeToString(src[:]))
				}
			case 2:
				if _, err = svc.ResetClientPubKeys(ctx, sys, c2.ByID(id)); err == nil {
					clear(pubkeys[id])
				}
			case 3:
				_, err = svc.NewC2Key(ctx, sys)
			}
		}
		if err != nil && !expected(err) {
			t.Fatalf("op %d: %v", i, err)
		}
		if rng.IntN(3) == 0 {
			deliver()
		}
	}
	deliver()
	if svc.PendingCount() != 0 {
		t.Fatalf("%d commands left", svc.PendingCount())
	}
	checked := 0
	for id, dev := range devices {
		st := dev.State()
		if mode == core.SymKey {
			if want := must(svc.ExportClientKey(ctx, sys, c2.ByID(id)))(t); !bytes.Equal(st.Key, want) {
				t.Fatalf("%s: identity key differs from C2", names[id])
			}
		} else {
			if !bytes.Equal(st.C2PublicKey, svc.C2().PublicKey) {
				t.Fatalf("%s: C2 public key differs", names[id])
			}
			if !maps.EqualFunc(st.PubKeys, pubkeys[id], bytes.Equal) {
				t.Fatalf("%s: peer keys %d, want %d", names[id], len(st.PubKeys), len(pubkeys[id]))
			}
		}
		topics, _, err := svc.ClientTopics(c2.ByID(id), "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Topics) != len(topics) {
			t.Fatalf("%s: device has %d topic keys, C2 links %d topics", names[id], len(st.Topics), len(topics))
		}
		for _, ti := range topics {
			got, ok := st.Topics[ti.Hash.String()]
			want := must(svc.ExportTopicKey(ctx, sys, ti.Name))(t)
			if !ok || !bytes.Equal(got.Key, want) {
				t.Fatalf("%s: key of %s differs", names[id], ti.Name)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no topic key checked")
	}
	t.Logf("%d devices, %d topic keys checked, %d events", len(devices), checked, svc.Position())
}

func must2[A, B any](a A, b B, err error) func(testing.TB) (A, B) {
	return func(t testing.TB) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

// TestDevicesFollowC2UnderRaces runs operations on different streams that
// touch the same devices concurrently (topic rotations, client key
// rotations, resets and re-links), then delivers everything and checks the
// devices: the queue must protect each command with the key the device
// holds at that point and skip rotations to clients reset meanwhile.
func TestDevicesFollowC2UnderRaces(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	svc := e.svc
	devs := map[domain.ID]*client.Client{}
	names := []string{"r0", "r1", "r2"}
	for _, n := range names {
		key := must(e.suite.GenerateKey())(t)
		must(svc.NewClient(ctx, sys, c2.ByName(n), key, 0))(t)
		devs[domain.ClientID(n)] = must(client.New(client.Config{Suite: e.suite, Mode: core.SymKey, Name: n, Key: key, Clock: e.clock.Now}))(t)
	}
	topics := []string{"race/0", "race/1"}
	for _, tp := range topics {
		must(svc.NewTopic(ctx, sys, tp))(t)
		must(svc.AttachClients(ctx, sys, tp, []c2.ClientRef{c2.ByName("r0"), c2.ByName("r1"), c2.ByName("r2")}))(t)
	}
	errs := make(chan error, 1000)
	done := make(chan struct{})
	worker := func(f func(i int) error) {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 30 {
				if err := f(i); err != nil && !expected(err) {
					errs <- err
				}
			}
		}()
	}
	worker(func(i int) error { _, err := svc.NewTopic(ctx, sys, topics[i%2]); return err })
	worker(func(i int) error { _, err := svc.NewTopic(ctx, sys, topics[(i+1)%2]); return err })
	worker(func(i int) error { _, err := svc.NewClientKey(ctx, sys, c2.ByName(names[i%3])); return err })
	worker(func(i int) error {
		n := names[(i+1)%3]
		if i%2 == 0 {
			_, err := svc.ResetClient(ctx, sys, c2.ByName(n))
			return err
		}
		_, err := svc.NewTopicClient(ctx, sys, c2.ByName(n), topics[i%2])
		return err
	})
	for range 4 {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, q := range svc.PendingAfter(0, 0) {
		topic, payload := must2(svc.BuildCommand(ctx, q))(t)
		if _, _, err := devs[q.Client].Unprotect(payload, topic); err != nil {
			t.Fatalf("device refuses %s: %v", q.Code, err)
		}
		if err := svc.RecordDelivered(ctx, sys, q); err != nil {
			t.Fatal(err)
		}
	}
	for id, dev := range devs {
		st := dev.State()
		if !bytes.Equal(st.Key, must(svc.ExportClientKey(ctx, sys, c2.ByID(id)))(t)) {
			t.Fatal("identity key differs")
		}
		tps, _, _ := svc.ClientTopics(c2.ByID(id), "", 10)
		if len(tps) != len(st.Topics) {
			t.Fatalf("device has %d topic keys, C2 links %d", len(st.Topics), len(tps))
		}
		for _, ti := range tps {
			if !bytes.Equal(st.Topics[ti.Hash.String()].Key, must(svc.ExportTopicKey(ctx, sys, ti.Name))(t)) {
				t.Fatalf("key of %s differs", ti.Name)
			}
		}
	}
	if got, want := e.rebuild(t, projectionsAll()), svc.KeyState().Snapshot(); !equalSnap(got, want) {
		t.Fatal("replay differs")
	}
}
