package c2_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// BenchmarkRotateTopic measures new_topic on a topic with 100 linked
// clients (decide, seal, append to memstore, apply, read-your-writes);
// BenchmarkRegisterClient is the same-run baseline of the cheapest write.
func BenchmarkRotateTopic(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b, core.SymKey)
	must(e.svc.NewTopic(ctx, sys, "bench"))(b)
	var refs []c2.ClientRef
	for i := range 100 {
		n := fmt.Sprintf("c%d", i)
		must(e.svc.NewClient(ctx, sys, c2.ByName(n), make([]byte, 32), domain.Role(1+i%3)))(b)
		refs = append(refs, c2.ByName(n))
	}
	must(e.svc.AttachClients(ctx, sys, "bench", refs))(b)
	b.ResetTimer()
	for range b.N {
		if _, err := e.svc.NewTopic(ctx, sys, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRegisterClient(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b, core.SymKey)
	b.ResetTimer()
	for i := range b.N {
		if _, err := e.svc.NewClient(ctx, sys, c2.ByName(fmt.Sprintf("c%d", i)), make([]byte, 32), 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildCommand measures building one SetTopicKey at publish time
// (two unseals and one AES-SIV protect).
func BenchmarkBuildCommand(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b, core.SymKey)
	must(e.svc.NewClient(ctx, sys, c2.ByName("a"), make([]byte, 32), 0))(b)
	must(e.svc.NewTopic(ctx, sys, "t"))(b)
	must(e.svc.NewTopicClient(ctx, sys, c2.ByName("a"), "t"))(b)
	q := e.svc.PendingFor(domain.ClientID("a"), 1)[0]
	b.ResetTimer()
	for range b.N {
		if _, _, err := e.svc.BuildCommand(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}
