package broker

import (
	"strconv"
	"strings"

	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
)

// persistHook is mochi's bbolt storage hook with one repair.
//
// mochi v2.7.9's storage hooks save an in-flight message without its packet
// id (storage.Message.PacketID stays 0), so after a restart every queued
// message of a client loads under id 0 and all but one are lost. The id is
// still the suffix of the record's key ("IFM_<client>:<packet id>"), so we
// restore it from there when loading.
type persistHook struct {
	*bolt.Hook
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
