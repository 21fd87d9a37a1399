package broker

import (
	"context"
	"log/slog"
)

// quietFirstStart is the broker's log handler: mochi's storage hook logs
// ERROR "failed to get data" with "key not found" when a persistence file
// has no $SYS record yet, which is every first start. That is no error; it
// is passed on at DEBUG so a healthy start logs no error line.
type quietFirstStart struct{ slog.Handler }

func (h quietFirstStart) Handle(ctx context.Context, r slog.Record) error {
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

func (h quietFirstStart) WithAttrs(as []slog.Attr) slog.Handler {
	return quietFirstStart{h.Handler.WithAttrs(as)}
}

func (h quietFirstStart) WithGroup(name string) slog.Handler {
	return quietFirstStart{h.Handler.WithGroup(name)}
}
