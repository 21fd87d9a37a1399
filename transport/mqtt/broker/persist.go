package broker

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unsafe"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.etcd.io/bbolt"
)

// persistHook is mochi's bbolt storage hook with two repairs.
//
// mochi v2.7.9's storage hooks save an in-flight message without its packet
// id (storage.Message.PacketID stays 0), so after a restart every queued
// message of a client loads under id 0 and all but one are lost. The id is
// still the suffix of the record's key ("IFM_<client>:<packet id>"), so we
// restore it from there when loading.
//
// It also stores refused subscriptions (with the failure code as their
// QoS), which a restart would then restore as real ones; we store only the
// granted ones.
//
// And when a subscriber acknowledges a QoS 2 message with PUBREC, mochi
// replaces the PUBLISH by a PUBREL in memory but not in the store: after a
// restart it would send the PUBLISH again, and the device would see an old
// command after newer ones. We store the PUBREL in its place.
type persistHook struct {
	*bolt.Hook
}

// Provides implements mqtt.Hook. It leaves out the $SYS statistics
// (OnSysInfoTick): we have no use for them in the session file, and
// mochi's event loop ticks them while Close stops the hooks, a data race
// on the hook's database handle inside mochi (seen under -race at stop).
func (h persistHook) Provides(b byte) bool {
	if b == mqtt.OnSysInfoTick {
		return false
	}
	return b == mqtt.OnPacketProcessed || h.Hook.Provides(b)
}

// OnPacketProcessed stores the PUBREL that replaced an acknowledged
// outbound QoS 2 PUBLISH. A client only sends PUBREC for a message the
// broker sent it, so this is always the outbound direction.
func (h persistHook) OnPacketProcessed(cl *mqtt.Client, pk packets.Packet, err error) {
	if err != nil || pk.FixedHeader.Type != packets.Pubrec {
		return
	}
	if rel, ok := cl.State.Inflight.Get(pk.PacketID); ok && rel.FixedHeader.Type == packets.Pubrel {
		h.Hook.OnQosPublish(cl, rel, rel.Created, 0)
	}
}

// OnSubscribed stores the granted subscriptions of a SUBSCRIBE.
func (h persistHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	if cl.Net.Inline {
		return // the front end's inline subscription, made again at each start
	}
	var filters packets.Subscriptions
	var granted []byte
	for i, f := range pk.Filters {
		if i < len(codes) && codes[i] <= packets.CodeGrantedQos2.Code {
			filters = append(filters, f)
			granted = append(granted, codes[i])
		}
	}
	if len(filters) == 0 {
		return
	}
	pk.Filters = filters
	h.Hook.OnSubscribed(cl, pk, granted)
}

// StoredInflightMessages implements mqtt.Hook.
func (h persistHook) StoredInflightMessages() ([]storage.Message, error) {
	v, err := h.Hook.StoredInflightMessages()
	if err != nil {
		return v, err
	}
	out := v[:0]
	for _, m := range v {
		if m.PacketID == 0 {
			i := strings.LastIndexByte(m.ID, ':')
			if i < 0 {
				continue
			}
			id, perr := strconv.ParseUint(m.ID[i+1:], 10, 16)
			if perr != nil || id == 0 {
				continue // unusable record: skip rather than collide on id 0
			}
			m.PacketID = uint16(id)
		}
		out = append(out, m)
	}
	return out, nil
}

// ErrNoSessionFile is returned by BackupSessions when there is no session
// file to copy: no persistence, a stopped broker, or a storage hook whose
// database cannot be reached.
var ErrNoSessionFile = errors.New("broker: no session file to copy")

// BackupSessions hands fn a consistent copy of the session file (every
// session, subscription and in-flight message as of one bbolt read
// transaction, taken while the broker serves), and its size. The copy is
// a complete bbolt file: restored as broker.db, a broker loads it.
//
// mochi's storage hook keeps its database unexported and holds the file's
// exclusive lock, so no other handle can read the file while the broker
// runs; the database is reached through the hook by reflection instead.
// If a mochi upgrade renames the field, sessionDB finds nothing and
// BackupSessions returns ErrNoSessionFile (a backup then says the file is
// left out; the server test of a restore fails).
func (b *Broker) BackupSessions(fn func(size int64, w io.WriterTo) error) error {
	b.mu.RLock()
	var db *bbolt.DB
	if b.srv != nil && b.reaper != nil && b.reaper.store != nil {
		// Under the lock with the server running: the hook's Stop (which
		// clears the field) runs only after Close took b.srv.
		db = sessionDB(b.reaper.store)
	}
	b.mu.RUnlock()
	if db == nil {
		return ErrNoSessionFile
	}
	// A Close meanwhile waits for this read transaction to end, or makes
	// it fail with bbolt's ErrDatabaseNotOpen.
	err := db.View(func(tx *bbolt.Tx) error { return fn(tx.Size(), tx) })
	if err != nil {
		return fmt.Errorf("broker: copy the session file: %w", err)
	}
	return nil
}

// sessionDB returns the bbolt database of mochi's storage hook (its
// unexported field db), or nil when it has no such field.
func sessionDB(h *bolt.Hook) *bbolt.DB {
	f := reflect.ValueOf(h).Elem().FieldByName("db")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*bbolt.DB]() {
		return nil
	}
	return *(**bbolt.DB)(unsafe.Pointer(f.UnsafeAddr()))
}
