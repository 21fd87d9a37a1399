package broker

import (
	"context"
	"log/slog"

	"github.com/mochi-mqtt/server/v2/packets"
)

// quietFirstStart is the broker's log handler: mochi's storage hook logs
// ERROR "failed to get data" with "key not found" when a persistence file
// has no $SYS record yet, which is every first start. That is no error; it
// is passed on at DEBUG so a healthy start logs no error line.
type quietFirstStart struct{ slog.Handler }

func (h quietFirstStart) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelDebug && r.Message == "failed publishing packet" && attrIs(r, "error", packets.CodeDisconnect.Error()) {
		// mochi's note that a message stayed queued for a client without
		// a connection: every message to a front-end device takes that
		// path (the front end writes it), so this would be a line, with
		// the packet, per delivery.
		return nil
	}
	if r.Level == slog.LevelError && r.Message == "failed to get data" {
		notFound := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "error" && a.Value.String() == "key not found" {
				notFound = true
				return false
			}
			return true
		})
		if notFound {
			if !h.Handler.Enabled(ctx, slog.LevelDebug) {
				return nil
			}
			q := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
			r.Attrs(func(a slog.Attr) bool { q.AddAttrs(a); return true })
			return h.Handler.Handle(ctx, q)
		}
	}
	return h.Handler.Handle(ctx, r)
}

// attrIs reports whether r has attribute key with the string value v.
func attrIs(r slog.Record, key, v string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			found = a.Value.String() == v
			return false
		}
		return true
	})
	return found
}

func (h quietFirstStart) WithAttrs(as []slog.Attr) slog.Handler {
	return quietFirstStart{h.Handler.WithAttrs(as)}
}

func (h quietFirstStart) WithGroup(name string) slog.Handler {
	return quietFirstStart{h.Handler.WithGroup(name)}
}
