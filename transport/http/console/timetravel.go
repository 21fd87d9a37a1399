package console

import (
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"strconv"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/projections"
)

// ttTopic is a topic as of the chosen time.
type ttTopic struct {
	Name                         string
	KeyVersion                   uint64
	Desired, Accepted, Confirmed uint64
	Members                      int
}

type ttData struct {
	Kind, Name, At string
	Enabled        bool
	Asked          bool
	Found          bool
	Position       uint64
	AtTime         time.Time
	Error          string
	Client         projections.ClientInfo
	Status         string
	Topics         []ttTopic
	Topic          projections.TopicInfo
	Members        []string
}

// timeTravelTimeout bounds one replay; maxReplays is how many may run at
// once (each reads the whole log up to its time).
const (
	timeTravelTimeout = 30 * time.Second
	maxReplays        = 2
)

var errBusy = &statusError{nethttp.StatusTooManyRequests, "other time-travel replays are running; retry in a moment"}

// timeTravel shows a client or a topic as it was at a chosen time: the
// log replayed into fresh projections up to that time, read-only.
func (c *Console) timeTravel(q *req) error {
	d := ttData{Kind: q.query("kind"), Name: q.query("name"), At: q.query("at"), Enabled: c.cfg.AsOf != nil}
	if d.Kind == "" {
		d.Kind = "client"
	}
	if !d.Enabled || d.Name == "" || d.At == "" {
		return c.render(q, "timetravel", "Time travel", d)
	}
	d.Asked = true
	var asOf projections.AsOf
	if pos, err := strconv.ParseUint(d.At, 10, 64); err == nil && pos > 0 {
		asOf.Position = pos
	} else {
		at, err := parseWhen(d.At)
		if err != nil {
			return err
		}
		asOf.Time, d.AtTime = at, at
	}
	select {
	case c.replays <- struct{}{}:
		defer func() { <-c.replays }()
	default:
		return errBusy
	}
	ctx, cancel := context.WithTimeout(q.r.Context(), timeTravelTimeout)
	defer cancel()
	ks, pos, err := c.cfg.AsOf(ctx, asOf)
	if err != nil {
		return fmt.Errorf("console: time travel: %w", err)
	}
	d.Position = pos
	if d.Kind == "topic" {
		d.Found = fillTopicAsOf(&d, ks)
	} else if err := fillClientAsOf(&d, ks); err != nil {
		d.Error = err.Error()
	}
	return c.render(q, "timetravel", "Time travel", d)
}

func fillClientAsOf(d *ttData, ks *projections.KeyState) error {
	id, err := clientID(d.Name)
	if err != nil {
		return err
	}
	ci, ok := ks.Client(id)
	if !ok {
		return nil
	}
	d.Found, d.Client = true, ci
	ci.PublicKey = nil
	sync, _ := ks.DeviceSync(id)
	d.Status = sync.Status
	for _, ts := range sync.Topics {
		t := ttTopic{Name: ts.Name, Desired: ts.Desired, Accepted: ts.Accepted, Confirmed: ts.Confirmed}
		if ti, ok := ks.Topic(ts.Topic); ok {
			t.KeyVersion, t.Members = ti.KeyVersion, ti.Members
		}
		d.Topics = append(d.Topics, t)
	}
	return nil
}

// clientID reads a client name or a 32-character hex id.
func clientID(s string) (domain.ID, error) {
	if id, err := c2.ByName(s).Resolve(); err == nil {
		return id, nil
	}
	if id, err := domain.ParseID(s); err == nil {
		return id, nil
	}
	return domain.ID{}, errors.New("not a client name or hex id")
}

func fillTopicAsOf(d *ttData, ks *projections.KeyState) bool {
	h := domain.TopicHash(d.Name)
	ti, ok := ks.Topic(h)
	if !ok {
		return false
	}
	d.Topic = ti
	for cursor := 0; ; {
		cs, next, ok := ks.TopicClients(h, cursor, 1000)
		if !ok {
			break
		}
		for _, ci := range cs {
			name := ci.Name
			if name == "" {
				name = ci.ID.String()
			}
			d.Members = append(d.Members, name)
		}
		if next == 0 || len(d.Members) >= 1000 {
			break
		}
		cursor = next
	}
	return true
}
