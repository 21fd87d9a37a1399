package c2_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// expected reports the refusals a random operation may legitimately get.
func expected(err error) bool {
	for _, s := range []error{domain.ErrUnknownClient, domain.ErrUnknownTopic, domain.ErrNotLinked,
		domain.ErrAlreadyExists, domain.ErrUnknownToken, c2.ErrNotPending,
		domain.ErrTokenNameRevoked, domain.ErrLastAdminToken} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// randomOps drives n random section-9 operations through the service.
// after is called after each operation with its index.
func randomOps(t *testing.T, e *env, rng *rand.Rand, n int, after func(i int)) {
	t.Helper()
	ctx := context.Background()
	svc := e.svc
	pk, _ := e.suite.(core.PKSuite)
	client := func() c2.ClientRef { return c2.ByName(fmt.Sprintf("dev-%d", rng.IntN(30))) }
	topic := func() string { return fmt.Sprintf("site/%d/data", rng.IntN(10)) }
	for i := range n {
		var err error
		op := rng.IntN(17)
		switch op {
		case 0, 1:
			var key []byte
			if e.mode == core.SymKey {
				key = make([]byte, 32)
				for j := range key {
					key[j] = byte(rng.Uint32())
				}
			} else {
				id, gerr := pk.GenerateIdentity()
				if gerr != nil {
					t.Fatal(gerr)
				}
				key = id.PublicKey()
			}
			_, err = svc.NewClient(ctx, sys, client(), key, domain.Role(1+rng.IntN(3)))
		case 2:
			_, err = svc.RemoveClient(ctx, sys, client(), rng.IntN(2) == 0)
		case 3, 4:
			_, err = svc.NewTopic(ctx, sys, topic())
		case 5:
			_, err = svc.RemoveTopic(ctx, sys, topic())
		case 6, 7:
			refs := []c2.ClientRef{client()}
			for range rng.IntN(3) {
				refs = append(refs, client())
			}
			_, err = svc.AttachClients(ctx, sys, topic(), refs)
		case 8:
			_, err = svc.RemoveTopicClient(ctx, sys, client(), topic())
		case 9:
			_, err = svc.ResetClient(ctx, sys, client())
		case 10:
			if e.mode == core.SymKey {
				_, err = svc.NewClientKey(ctx, sys, client())
			} else {
				switch rng.IntN(4) {
				case 0:
					_, err = svc.SendClientPubKey(ctx, sys, client(), client())
				case 1:
					_, err = svc.RemoveClientPubKey(ctx, sys, client(), client())
				case 2:
					_, err = svc.ResetClientPubKeys(ctx, sys, client())
				case 3:
					_, err = svc.NewC2Key(ctx, sys)
				}
			}
		case 11, 12:
			// The delivery worker: build the head of a random queue and
			// record it delivered or failed.
			ids := svc.PendingClients()
			if len(ids) == 0 {
				break
			}
			q := svc.PendingFor(ids[rng.IntN(len(ids))], 1)[0]
			if _, _, berr := svc.BuildCommand(ctx, q); berr != nil {
				t.Fatalf("op %d: build %s: %v", i, q.Code, berr)
			}
			switch rng.IntN(5) {
			case 0:
				err = svc.RecordFailed(ctx, c2.Origin{Actor: "system"}, q, "test")
			case 1, 2:
				err = svc.RecordConfirmed(ctx, c2.Origin{Actor: "system"}, q)
			default:
				err = svc.RecordDelivered(ctx, c2.Origin{Actor: "system"}, q)
			}
		case 14:
			id, _ := client().Resolve()
			err = svc.RecordSeen(ctx, c2.Origin{}, id, rng.IntN(2) == 0)
		case 15:
			_, err = svc.Resync(ctx, sys, client(), rng.IntN(3) == 0)
		case 16:
			_, err = svc.ResyncAll(ctx, sys, false)
		case 13:
			name := fmt.Sprintf("tok-%d", rng.IntN(4))
			if rng.IntN(2) == 0 {
				_, _, err = svc.CreateToken(ctx, sys, name, domain.TokenRole(1+rng.IntN(3)))
			} else {
				_, err = svc.RevokeToken(ctx, sys, name)
			}
		}
		if err != nil && !expected(err) {
			t.Fatalf("op %d (%d): %v", i, op, err)
		}
		if after != nil {
			after(i)
		}
	}
}

func TestRandomOpsReplayEqualsLive(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 600
	}
	for _, mode := range []core.Mode{core.SymKey, core.PubKey} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, mode)
			rng := rand.New(rand.NewPCG(1, uint64(mode)))
			var midPos uint64
			var midTime time.Time
			var midSnap projections.Snapshot
			randomOps(t, e, rng, n, func(i int) {
				if i == n/2 {
					midPos, midSnap = e.svc.Position(), e.svc.KeyState().Snapshot()
					midTime = e.clock.Now()
				}
			})
			live := e.svc.KeyState().Snapshot()
			if live.Pending == 0 && len(live.Clients) == 0 {
				t.Fatal("random run did nothing")
			}
			if got := e.rebuild(t, projections.AsOf{}); !equalSnap(got, live) {
				t.Fatal("replay differs from live state")
			}
			if midSnap.Position != midPos {
				t.Fatalf("mid snapshot at %d, runner at %d", midSnap.Position, midPos)
			}
			if got := e.rebuild(t, projections.AsOf{Position: midPos}); !equalSnap(got, midSnap) {
				t.Fatal("as-of position replay differs")
			}
			if got := e.rebuild(t, projections.AsOf{Time: midTime}); !equalSnap(got, midSnap) {
				t.Fatal("as-of time replay differs")
			}
			// Every still pending command can be built.
			for _, q := range e.svc.PendingAfter(0, 0) {
				if _, _, err := e.svc.BuildCommand(context.Background(), q); err != nil {
					t.Fatalf("build %s: %v", q.Code, err)
				}
			}
			t.Logf("%d ops -> %d events, %d clients, %d topics, %d pending", n, live.Position,
				e.svc.CountClients(), e.svc.CountTopics(), live.Pending)
		})
	}
}

func TestConcurrentTopicOpsNoContentionFailure(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	for i := range 6 {
		must(e.svc.NewClient(ctx, sys, c2.ByName(fmt.Sprintf("c%d", i)), make([]byte, 32), domain.Role(1+i%3)))(t)
	}
	const workers, ops = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*ops)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ops {
				topic := fmt.Sprintf("shared/%d", i%3)
				if _, err := createOrRotate(ctx, e.svc, c2.Origin{Actor: fmt.Sprintf("cli:w%d", w)}, topic); err != nil {
					errs <- err
				}
				if _, err := e.svc.NewTopicClient(ctx, sys, c2.ByName(fmt.Sprintf("c%d", (w+i)%6)), topic); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("contention failure: %v", err)
	}
	// Every NewTopic call is in the log: 3 creations and the rest rotations.
	recs, err := e.store.ReadAll(ctx, 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, r := range recs {
		counts[r.Type]++
	}
	if counts["topic.created.v1"] != 3 || counts["topic.key_rotated.v1"] != workers*ops-3 {
		t.Fatalf("creations %d rotations %d", counts["topic.created.v1"], counts["topic.key_rotated.v1"])
	}
	if got, want := e.rebuild(t, projections.AsOf{}), e.svc.KeyState().Snapshot(); !equalSnap(got, want) {
		t.Fatal("replay differs from live state")
	}
}

// TestTwoInstancesOneStore: two services on one store (active-active)
// contend on the same topics; neither sees a failure and both converge to
// the same state.
func TestTwoInstancesOneStore(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	other := e.open(t)
	for i := range 4 {
		must(e.svc.NewClient(ctx, sys, c2.ByName(fmt.Sprintf("c%d", i)), make([]byte, 32), 0))(t)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for w := range 6 {
		svc := e.svc
		if w%2 == 1 {
			svc = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				topic := fmt.Sprintf("ha/%d", i%2)
				if _, err := createOrRotate(ctx, svc, sys, topic); err != nil {
					errs <- err
				}
				// The other instance may not have seen the client yet:
				// registrations went through the first one.
				if _, err := svc.NewTopicClient(ctx, sys, c2.ByName(fmt.Sprintf("c%d", (w+i)%4)), topic); err != nil && !errors.Is(err, domain.ErrUnknownClient) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("instance failure: %v", err)
	}
	pos := max(e.svc.Position(), other.Position())
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.svc.WaitPosition(wctx, pos); err != nil {
		t.Fatal(err)
	}
	if err := other.WaitPosition(wctx, pos); err != nil {
		t.Fatal(err)
	}
	if !equalSnap(e.svc.KeyState().Snapshot(), other.KeyState().Snapshot()) {
		t.Fatal("instances diverge")
	}
}

// createOrRotate creates the topic, or rotates it when it exists: each
// call is one decision, so concurrent callers contend like the historical
// create-or-rotate new_topic did.
func createOrRotate(ctx context.Context, svc *c2.Service, o c2.Origin, topic string) (c2.Result, error) {
	res, err := svc.NewTopic(ctx, o, topic)
	if errors.Is(err, domain.ErrTopicExists) {
		return svc.RotateTopic(ctx, o, topic)
	}
	return res, err
}
