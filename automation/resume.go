package automation

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/e4c2/e4c2/eventstore"
)

// ruleRecordsUpTo returns the rule events of every rule stream up to
// position pos, in global order. Run needs them to know its rules as they
// were at its checkpoint; reading the rule streams costs what the rules
// cost, where scanning the log from position 1 (which Run did, and still
// does on a store that cannot list its streams) costs the whole log: tens
// of seconds at 10 M events. ok is false when the store cannot list its
// streams (no eventstore.HeadStore).
func (e *Engine) ruleRecordsUpTo(ctx context.Context, pos uint64) (recs []eventstore.Record, ok bool, err error) {
	hs, ok := e.store.(eventstore.HeadStore)
	if !ok {
		return nil, false, nil
	}
	heads, err := hs.StreamHeads(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("automation: list streams: %w", err)
	}
	for stream := range heads {
		if !strings.HasPrefix(stream, StreamPrefix) {
			continue
		}
		rs, err := e.store.ReadStream(ctx, stream, 1)
		if err != nil {
			return nil, false, fmt.Errorf("automation: read %s: %w", stream, err)
		}
		for _, r := range rs {
			if r.Position <= pos && IsRuleEvent(r.Type) {
				recs = append(recs, r)
			}
		}
	}
	// Global order, as a scan would apply them: the depth map keeps the
	// most recent fires, so the order matters.
	slices.SortFunc(recs, func(a, b eventstore.Record) int {
		switch {
		case a.Position < b.Position:
			return -1
		case a.Position > b.Position:
			return 1
		}
		return 0
	})
	return recs, true, nil
}
