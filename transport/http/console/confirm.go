package console

import (
	"fmt"
	nethttp "net/http"
	"net/url"
	"strings"

	httpapi "github.com/e4c2/e4c2/transport/http"
)

type field struct{ Name, Value string }

type confirmData struct {
	Title, Impact, Button, Action, Back string
	Details                             []string
	Fields                              []field
	ResetOption                         bool
}

// plural writes "1 device" or "n devices".
func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %ss", n, one)
}

// confirm names what a destructive action will change before it runs:
// which devices receive which command.
func (c *Console) confirm(q *req) error {
	ctx := q.r.Context()
	action := q.query("action")
	if !destructive[action] {
		return &statusError{nethttp.StatusNotFound, "no such action"}
	}
	d := confirmData{Action: Prefix + action, Back: Prefix}
	switch {
	case strings.HasPrefix(action, "client/"):
		cl, err := c.api.Client(ctx, q.query("client"))
		if err != nil {
			return err
		}
		ref := clientRef(cl)
		d.Fields = []field{{"client", ref}}
		d.Back = Prefix + "client?c=" + url.QueryEscape(ref)
		c.confirmClient(&d, action, cl)
	case action == "topic/remove":
		t, err := c.api.Topic(ctx, q.query("topic"))
		if err != nil {
			return err
		}
		d.Fields = []field{{"topic", t.Name}}
		d.Back = Prefix + "topic?t=" + url.QueryEscape(t.Name)
		d.Title, d.Button = "remove topic "+t.Name, "Remove topic"
		d.Impact = fmt.Sprintf("%s will receive RemoveTopic for %s, and the topic's key is forgotten.", plural(t.Clients, "device"), t.Name)
	case action == "c2key/rotate":
		n, err := c.api.CountClients(ctx)
		if err != nil {
			return err
		}
		d.Back = Prefix + "c2key"
		d.Title, d.Button = "rotate the C2 key", "Rotate the C2 key"
		d.Impact = fmt.Sprintf("%s will receive SetC2Key with a new C2 public key.", plural(n, "device"))
		d.Details = []string{"Commands are signed with the new key once it is generated; a device that misses SetC2Key must be resynced."}
	}
	return c.render(q, "confirm", "Confirm", d)
}

func (c *Console) confirmClient(d *confirmData, action string, cl httpapi.Client) {
	name := displayName(cl)
	topics := "no topic"
	if cl.Sync != nil && len(cl.Sync.Topics) > 0 {
		names := make([]string, len(cl.Sync.Topics))
		for i, t := range cl.Sync.Topics {
			names[i] = t.Topic
		}
		topics = strings.Join(names, ", ")
	}
	switch action {
	case "client/reset":
		d.Title, d.Button = "reset "+name, "Reset"
		d.Impact = fmt.Sprintf("1 device (%s) will receive ResetTopics and be unlinked from %s: %s.", name, plural(cl.Topics, "topic"), topics)
	case "client/remove":
		d.Title, d.Button, d.ResetOption = "remove "+name, "Remove", true
		d.Impact = fmt.Sprintf("Client %s will be removed from the C2 and unlinked from %s: %s. With the option below, 1 device (%s) first receives ResetTopics.", name, plural(cl.Topics, "topic"), topics, name)
	case "client/pubkey/reset":
		d.Title, d.Button = "reset the public keys of "+name, "Reset public keys"
		d.Impact = fmt.Sprintf("1 device (%s) will receive ResetPubKeys and forget every other client's public key.", name)
	}
}
