package automation

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/suites/core"
)

// doublings is a chain of lets, each the previous string twice: 2^40
// bytes at the end.
func doublings(n int) string {
	var b strings.Builder
	b.WriteString(`let v0 = "x"; `)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "let v%d = v%d + v%d; ", i, i-1, i-1)
	}
	fmt.Fprintf(&b, "len(v%d) > 0", n)
	return b.String()
}

// A reader's dry run cannot make the process allocate gigabytes through
// string growth (which expr's memory budget does not count and Go answers
// with an unrecoverable "out of memory"): each expression fails fast with
// ErrStringTooLong, and the whole test allocates a few megabytes.
func TestStringGrowthCapped(t *testing.T) {
	// A guard: should a cap be missing, the GC works hard long before the
	// machine runs out of memory (a single huge allocation still crashes,
	// which fails the test as surely).
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(512 << 20))
	w := newWorld(t, core.SymKey)
	e := w.engine(nil, "a")
	ctx := context.Background()
	cases := map[string]string{
		"repeat":     `len(repeat(repeat("x", 1000000), 1000000)) > 0`,
		"let chain":  doublings(40),
		"reduce":     `len(reduce(1..40, #acc + #acc, "x")) > 0`,
		"join":       `let s = repeat("y", 60000); len(join(map(1..1000, s), "")) > 0`,
		"replace":    `len(replace(repeat("x", 60000), "x", repeat("x", 60000))) > 0`,
		"toJSON":     `let s = repeat("y", 60000); len(toJSON(map(1..1000, s))) > 0`,
		"string":     `let s = repeat("y", 60000); len(string(map(1..1000, s))) > 0`,
		"toBase64":   `len(reduce(1..60, toBase64(#acc), "xyz")) > 0`,
		"event + ":   `len(reduce(1..100, #acc + event.type, repeat("z", 65000))) > 0`,
		"map values": `len(reduce(1..40, #acc + {"a": #acc}.a, "x")) > 0`,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			p, err := e.DryRun(ctx, Spec{Trigger: Trigger{Event: src}, Action: Action{Type: ActionRotateTopic}},
				&Event{Type: "topic.created.v1"})
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			if p.Error == "" || !strings.Contains(p.Error, ErrStringTooLong.Error()) {
				t.Fatalf("want a string-cap error, got %+v", p)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<20 {
				t.Fatalf("the evaluation allocated %d MiB", grew>>20)
			}
		})
	}
}

// Within the cap, the capped operations behave like expr's own: numbers
// still add, strings concatenate, the builtins give the same results, and
// a statically wrong + is still refused at compile time.
func TestStringCapKeepsSemantics(t *testing.T) {
	w := newWorld(t, core.SymKey)
	e := w.engine(nil, "a")
	ctx := context.Background()
	for _, src := range []string{
		`1 + 2 == 3`,
		`1.5 + 1 == 2.5`,
		`"a" + "b" == "ab"`,
		`event.type + "!" == "topic.created.v1!"`,
		`reduce(1..3, #acc + #, 0) == 6`,
		`reduce(1..3, #acc + "x", "") == "xxx"`,
		`repeat("ab", 3) == "ababab"`,
		`join(["a", "b"], "-") == "a-b"`,
		`join(map(1..3, string(#))) == "123"`,
		`replace("aXbX", "X", "yy") == "ayybyy"`,
		`toBase64("hi") == "aGk="`,
		`toJSON([1, "a"]) == "[\n  1,\n  \"a\"\n]"`,
		`string(42) == "42"`,
		`len(repeat("x", 65536)) == 65536`,
		`now + duration("1h") > now`,
		`len(map(1..3, # + 1)) == 3`,
	} {
		p, err := e.DryRun(ctx, Spec{Trigger: Trigger{Event: src}, Action: Action{Type: ActionRotateTopic}},
			&Event{Type: "topic.created.v1"})
		if err != nil || p.Error != "" || p.Matched == nil || !*p.Matched {
			t.Errorf("%s: %+v %v", src, p, err)
		}
	}
	_, err := e.DryRun(ctx, Spec{Trigger: Trigger{Event: `"a" + 1 == "a1"`}, Action: Action{Type: ActionRotateTopic}}, &Event{})
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("string + int compiled: %v", err)
	}
}
