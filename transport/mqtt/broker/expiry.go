package broker

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
)

// reaper expires the sessions of disconnected clients, by kind: a device's
// after DeviceSessionExpiry, anybody else's after SessionExpiry.
//
// mochi v2.7.9 has a single expiry for every MQTT 3 session, and when it
// expires one it only forgets the client: the subscriptions stay in its
// topic index (memory that never comes back) and the bbolt store keeps
// the session's subscriptions and queued messages forever, so the
// persistence file grows with every client id ever seen. The reaper
// removes the whole session, in memory and in the store, both when it
// expires a session itself and when mochi does (OnClientExpired, e.g. an
// MQTT 5 client's own shorter expiry).
//
// A client that reconnects in the instant between the check and the
// removal can lose its new entry in mochi's client table (mochi's own
// expiry has the same race); its connection then stays up but the next
// connection under that id starts a clean session.
type reaper struct {
	mqtt.HookBase
	srv          *mqtt.Server
	auth         *authHook
	devices      *deviceHook
	store        *bolt.Hook // nil without persistence
	expiry       time.Duration
	deviceExpiry time.Duration

	once sync.Once
	done chan struct{}
	wg   sync.WaitGroup
}

func (r *reaper) ID() string { return "e4-reaper" }

func (r *reaper) Provides(b byte) bool { return b == mqtt.OnClientExpired }

// OnClientExpired finishes mochi's own expiry of a session.
func (r *reaper) OnClientExpired(cl *mqtt.Client) {
	r.srv.UnsubscribeClient(cl) // store: subscriptions
	cl.ClearInflights()         // store: queued messages
}

// interval is how often the reaper looks: a quarter of the shorter expiry,
// between 100ms and a minute.
func (r *reaper) interval() time.Duration {
	return min(max(min(r.expiry, r.deviceExpiry)/4, 100*time.Millisecond), time.Minute)
}

func (r *reaper) start() {
	r.done = make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.interval())
		defer t.Stop()
		for {
			select {
			case <-r.done:
				return
			case now := <-t.C:
				r.reap(now)
				r.devices.sweep()
			}
		}
	}()
}

// halt stops the loop and waits for it (before the store closes).
func (r *reaper) halt() {
	r.once.Do(func() { close(r.done) })
	r.wg.Wait()
}

// reap removes the sessions whose client has been gone for longer than
// their expiry.
func (r *reaper) reap(now time.Time) {
	for id, cl := range r.srv.Clients.GetAll() {
		if cl.Net.Inline {
			continue
		}
		stopped := cl.StopTime()
		if stopped == 0 || !cl.Closed() {
			continue
		}
		limit := r.expiry
		if ro, _ := r.auth.classify(cl); ro == roleDevice {
			limit = r.deviceExpiry
		}
		if now.Sub(time.Unix(stopped, 0)) < limit {
			continue
		}
		if cur, ok := r.srv.Clients.Get(id); !ok || cur != cl {
			continue // replaced by a new connection meanwhile
		}
		r.srv.Clients.Delete(id)
		r.srv.UnsubscribeClient(cl)
		cl.ClearInflights()
		if r.store != nil {
			r.store.OnClientExpired(cl)
		}
	}
}
