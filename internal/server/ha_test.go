package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jsapi "github.com/nats-io/nats.go/jetstream"

	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/jetstream"
	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

// haInstance is one e4c2 process of the HA test.
type haInstance struct {
	name string
	base string
	p    *proc
	dead bool
}

var leaseLine = regexp.MustCompile(`e4c2_lease_state\{duty="([a-z]+)",state="holder"\} 1`)

// holds returns the duties this instance says it holds, from /metrics.
func (in *haInstance) holds(t *testing.T) map[string]bool {
	code, body := httpDo(t, nethttp.MethodGet, in.base+"/metrics", "", nil)
	out := map[string]bool{}
	if code != nethttp.StatusOK {
		return out
	}
	for _, m := range leaseLine.FindAllStringSubmatch(string(body), -1) {
		out[m[1]] = true
	}
	return out
}

// holderOf waits until one of ins holds duty and returns it.
func holderOf(t *testing.T, ins []*haInstance, duty string) *haInstance {
	t.Helper()
	var h *haInstance
	testwait.For(t, "an instance to hold the "+duty+" lease", func() bool {
		for _, in := range ins {
			if in.holds(t)[duty] {
				h = in
				return true
			}
		}
		return false
	})
	return h
}

func (in *haInstance) metric(t *testing.T, name string) float64 {
	_, body := httpDo(t, nethttp.MethodGet, in.base+"/metrics", "", nil)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// haDo sends one API request (a JSON body if body is not nil, the token
// if not empty) with read-your-writes: it sends minPos as
// X-E4C2-Min-Position when not 0 and returns the X-E4C2-Position of the
// answer. A transport error is status 0 with the error as the body.
func haDo(t testing.TB, method, u, token string, body any, minPos uint64) (int, []byte, uint64) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := nethttp.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if minPos > 0 {
		req.Header.Set(MinPositionHeader, strconv.FormatUint(minPos, 10))
	}
	resp, err := (&nethttp.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, []byte(err.Error()), 0
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	pos, _ := strconv.ParseUint(resp.Header.Get(PositionHeader), 10, 64)
	return resp.StatusCode, out, pos
}

// TestHAThreeInstances is the proof of issue 15: three e4c2 processes (the
// built binary) on a 3-node JetStream cluster with replication 3 and one
// external mosquitto, a fleet of device-library devices (200; 40 under
// -short). Operations go through all three instances concurrently; then
// the holder of the delivery lease is killed (-9) in the middle of a
// fan-out of topic rotations, and so is one NATS node (a process of its
// own, the leader of the log's stream) in the middle of another. Every
// acknowledged operation is in the log, every device ends on the newest
// key, the scheduled rule fired at most once per tick, and each surviving
// instance's live state equals a replay of the log. The killed NATS node
// then restarts from its store and the log is replicated 3 times again.
// The failover time (kill to a survivor holding the delivery lease) is
// logged.
func TestHAThreeInstances(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 40
	}
	mq := testbroker.StartMosquittoPersistent(t, 0) // skips when mosquitto is missing
	bin := buildE4c2(t)
	nc := startNATSProcs(t)
	storeURL := nc.clientURLs() + "?replicas=3&stream=HA&prefix=ha"

	var keyFile string
	startInstance := func(i int) *haInstance {
		dir := t.TempDir()
		in := &haInstance{name: fmt.Sprintf("c2-%d", i), base: "http://" + testbroker.FreeAddr(t)}
		args := []string{"serve", "--data-dir", dir, "--http-listen", strings.TrimPrefix(in.base, "http://"),
			"--mqtt-listen", testbroker.FreeAddr(t), "--store", storeURL, "--broker", mq.URL(),
			"--instance-id", in.name, "--log-level", "warn",
			// The devices connect before they get their first command
			// (docs/external-broker.md, pre-provisioned fleets).
			"--deliver-unseen"}
		if keyFile != "" {
			args = append(args, "--master-key-file", keyFile)
		} else {
			keyFile = dir + "/master.key"
		}
		in.p = startProc(t, bin, args...)
		return in
	}
	a := startInstance(0)
	token := a.p.adminToken(t)
	waitHealthy(t, a.base, a.p)
	testwait.For(t, "the first instance to hold both leases", func() bool {
		h := a.holds(t)
		return h["delivery"] && h["schedules"]
	})
	ins := []*haInstance{a, startInstance(1), startInstance(2)}
	for _, in := range ins[1:] {
		waitHealthy(t, in.base, in.p)
	}
	for _, in := range ins {
		testwait.For(t, in.name+" ready", func() bool {
			code, _ := httpDo(t, nethttp.MethodGet, in.base+"/readyz", "", nil)
			return code == nethttp.StatusOK
		})
	}

	// acked counts the operations an instance acknowledged; ambiguous
	// those whose answer was an error (they may or may not be in the log).
	var acked, ambiguous sync.Map
	count := func(m *sync.Map, key string) {
		v, _ := m.LoadOrStore(key, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	get := func(m *sync.Map, key string) int64 {
		v, ok := m.Load(key)
		if !ok {
			return 0
		}
		return v.(*atomic.Int64).Load()
	}
	// op sends one operation until an instance acknowledges it, trying the
	// live instances in turn starting with in. Every request carries the
	// highest log position an answer named so far (read your writes across
	// instances: the answering instance first applies the log up to there).
	var maxPos atomic.Uint64
	op := func(first int, method, path string, body any, want int, kind string) []byte {
		t.Helper()
		var last []byte
		deadline := time.Now().Add(testwait.Timeout)
		for try := 0; time.Now().Before(deadline); try++ {
			in := ins[(first+try)%len(ins)]
			if in.dead {
				continue
			}
			code, out, pos := haDo(t, method, in.base+path, token, body, maxPos.Load())
			for {
				cur := maxPos.Load()
				if pos <= cur || maxPos.CompareAndSwap(cur, pos) {
					break
				}
			}
			if code == want {
				count(&acked, kind)
				return out
			}
			if code == nethttp.StatusConflict && want == nethttp.StatusCreated && last != nil {
				// An earlier attempt's answer was ambiguous (a 5xx, say
				// its read models were still catching up): it was stored.
				count(&acked, kind)
				return out
			}
			last = out
			if code >= 400 && code < 500 && code != nethttp.StatusTooManyRequests {
				t.Fatalf("%s %s on %s: %d %s", method, path, in.name, code, out)
			}
			count(&ambiguous, kind)
		}
		t.Fatalf("%s %s: no instance acknowledged it: %s", method, path, last)
		return nil
	}

	// The fleet registers through all three instances at once.
	s, _ := suites.ByName("standard")
	fleet := make([]*fleetDev, n)
	names := make([]string, n)
	for i := range fleet {
		key, _ := s.GenerateKey()
		c, err := client.New(client.Config{Suite: s, Mode: core.SymKey, Name: fmt.Sprintf("ha-%03d", i), Key: key})
		if err != nil {
			t.Fatal(err)
		}
		fleet[i], names[i] = &fleetDev{name: fmt.Sprintf("ha-%03d", i), c: c}, fmt.Sprintf("ha-%03d", i)
	}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 3 {
				f := fleet[i]
				key := f.c.State().Key
				op(w, nethttp.MethodPost, "/api/v1/clients", map[string]string{"name": f.name, "key": hex.EncodeToString(key), "role": "consumer"}, nethttp.StatusCreated, "client")
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Devices connect (persistent sessions on mosquitto) before any
	// command is sent to them.
	connectFleet(t, mq.URL(), fleet)
	if t.Failed() {
		return
	}
	const topic, schedTopic = "ha/fleet", "ha/sched"
	op(1, nethttp.MethodPost, "/api/v1/topics", map[string]string{"topic": topic}, nethttp.StatusCreated, "topic")
	op(2, nethttp.MethodPost, "/api/v1/topics", map[string]string{"topic": schedTopic}, nethttp.StatusCreated, "topic")
	op(0, nethttp.MethodPost, "/api/v1/batch/attach", map[string]any{"topic": topic, "clients": names}, nethttp.StatusOK, "attach")
	op(1, nethttp.MethodPost, "/api/v1/rules", map[string]any{"id": "ha-tick", "trigger": map[string]string{"every": "2s"},
		"targets": `["` + schedTopic + `"]`, "action": map[string]string{"type": "rotate_topic"},
		"rate_limit": map[string]any{"max": 1000, "per": "1m"}}, nethttp.StatusCreated, "rule")

	live := func() []*haInstance {
		var out []*haInstance
		for _, in := range ins {
			if !in.dead {
				out = append(out, in)
			}
		}
		return out
	}
	converged := func(what string) time.Duration {
		t.Helper()
		start := time.Now()
		// Every rotation was acknowledged: the newest key is fixed. One
		// export (an audited operation) per phase, not per poll.
		var exported struct {
			Key string `json:"key"`
		}
		if err := json.Unmarshal(op(0, nethttp.MethodPost, "/api/v1/export/topics/"+url.PathEscape(topic), nil, nethttp.StatusOK, "export"), &exported); err != nil {
			t.Fatal(err)
		}
		want, _ := hex.DecodeString(exported.Key)
		hash := hex.EncodeToString(s.HashTopic(topic))
		deadline := time.Now().Add(2 * testwait.Timeout)
		for {
			behind := 0
			for _, f := range fleet {
				if tk, ok := f.c.State().Topics[hash]; !ok || !bytes.Equal(tk.Key, want) {
					behind++
				}
			}
			if behind == 0 {
				break
			}
			if time.Now().After(deadline) {
				var diag []string
				for _, in := range live() {
					diag = append(diag, fmt.Sprintf("%s holds %v, published %v, delivered %v, queue %v", in.name, in.holds(t),
						in.metric(t, "e4c2_delivery_published_total"), in.metric(t, "e4c2_delivery_delivered_total"),
						in.metric(t, "e4c2_delivery_queue_depth")))
				}
				t.Fatalf("%s: %d of %d devices lack the newest key after %v; %s", what, behind, n, 2*testwait.Timeout, strings.Join(diag, "; "))
			}
			time.Sleep(20 * time.Millisecond) // polling the devices' state, not synchronizing
		}
		return time.Since(start)
	}
	t.Logf("first key on every device in %v", converged("every device to hold the first key").Round(10*time.Millisecond))

	// Rotations through all three instances at once.
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				op(w, nethttp.MethodPost, "/api/v1/topics/"+url.PathEscape(topic)+"/rotate", nil, nethttp.StatusOK, "rotate")
			}
		}()
	}
	wg.Wait()
	t.Logf("6 concurrent rotations through 3 instances on every device in %v", converged("every device to hold the key after concurrent rotations").Round(10*time.Millisecond))
	for _, in := range ins {
		t.Logf("%s: broker unavailable waits %v, retries %v, store conflicts %v, log subscription drops %v", in.name, in.metric(t, "e4c2_delivery_broker_unavailable_total"),
			in.metric(t, "e4c2_delivery_retries_total"), in.metric(t, `e4c2_store_appends_total{outcome="conflict"}`), in.metric(t, "e4c2_log_subscription_drops_total"))
	}
	t.Logf("key exports answered 503 position_not_reached (an instance's read models lagging): %d", get(&ambiguous, "export"))

	// Kill -9 the delivery lease holder in the middle of a fan-out.
	var holder *haInstance
	for _, in := range ins {
		if in.holds(t)["delivery"] {
			holder = in
		}
	}
	if holder == nil {
		t.Fatal("no instance holds the delivery lease")
	}
	other := 0
	for i, in := range ins {
		if in != holder {
			other = i
			break
		}
	}
	published := holder.metric(t, "e4c2_delivery_published_total")
	for range 3 {
		op(other, nethttp.MethodPost, "/api/v1/topics/"+url.PathEscape(topic)+"/rotate", nil, nethttp.StatusOK, "rotate")
	}
	testwait.For(t, "the holder to start the fan-out", func() bool {
		return holder.metric(t, "e4c2_delivery_published_total") > published
	})
	if err := holder.p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	holder.dead = true
	holder.p.wait(t, 10*time.Second)
	var failover time.Duration
	testwait.For(t, "a survivor to take the delivery lease", func() bool {
		for _, in := range live() {
			if in.holds(t)["delivery"] {
				failover = time.Since(killed)
				return true
			}
		}
		return false
	})
	t.Logf("failover: a survivor holds the delivery lease %v after the kill -9 of %s", failover.Round(10*time.Millisecond), holder.name)
	if failover > 12*time.Second {
		t.Errorf("failover took %v; the bound for the default 8 s lease is 10 s", failover)
	}
	for _, in := range live() {
		t.Logf("at takeover: %s holds %v, published %v, delivered %v, queue %v", in.name, in.holds(t),
			in.metric(t, "e4c2_delivery_published_total"), in.metric(t, "e4c2_delivery_delivered_total"), in.metric(t, "e4c2_delivery_queue_depth"))
	}
	took := converged("every device to hold the newest key after the holder's kill -9")
	t.Logf("fleet converged %v after the takeover", took.Round(10*time.Millisecond))
	testwait.For(t, "a survivor to take the schedules lease", func() bool {
		for _, in := range live() {
			if in.holds(t)["schedules"] {
				return true
			}
		}
		return false
	})

	// One NATS node is killed -9 in the middle of a rotation's fan-out: the
	// leader of the log's stream, so the log changes leader too, and every
	// reader of the log (the instances' subscriptions) must go on from
	// another node. The majority keeps the log writable.
	js, err := jsapi.New(nc.connect(t))
	if err != nil {
		t.Fatal(err)
	}
	victim := nc.streamLeader(t, js, "HA")
	deliverer := holderOf(t, live(), "delivery")
	published = deliverer.metric(t, "e4c2_delivery_published_total")
	op(0, nethttp.MethodPost, "/api/v1/topics/"+url.PathEscape(topic)+"/rotate", nil, nethttp.StatusOK, "rotate")
	testwait.For(t, "the fan-out before the NATS node's kill", func() bool {
		return deliverer.metric(t, "e4c2_delivery_published_total") > published
	})
	nc.kill(t, victim)
	op(1, nethttp.MethodPost, "/api/v1/topics/"+url.PathEscape(topic)+"/rotate", nil, nethttp.StatusOK, "rotate")
	t.Logf("2 rotations, NATS node %s (the log's leader) killed -9 in the first's fan-out, on every device in %v", nc.specs[victim].ServerName,
		converged("every device to hold the newest key with one NATS node killed").Round(10*time.Millisecond))
	for _, in := range live() {
		t.Logf("%s after the NATS kill: log subscription drops %v", in.name, in.metric(t, "e4c2_log_subscription_drops_total"))
	}
	// What an operator does next: the node restarts from its store, rejoins
	// and catches up; both streams are replicated 3 times again.
	restarted := time.Now()
	nc.restart(t, victim)
	for _, stream := range []string{"HA", "HA_KEYRING"} {
		waitReplicasCurrent(t, js, stream, 3)
	}
	t.Logf("NATS node %s restarted: 3 current replicas again in %v", nc.specs[victim].ServerName, time.Since(restarted).Round(10*time.Millisecond))
	// The survivor holding the schedules lease fires the rule (every 2 s):
	// the log shows two fires decided after the kill.
	ctx := context.Background()
	st, err := jetstream.Open(ctx, nc.clientURLs()+"?stream=HA&prefix=ha", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testwait.For(t, "two schedule fires after the kill", func() bool {
		recs, err := st.ReadStream(ctx, "rule-ha-tick", 1)
		if err != nil {
			return false
		}
		after := 0
		for _, r := range recs {
			if r.Type == "rule.fired.v1" && r.Meta.Time.After(killed) {
				after++
			}
		}
		return after >= 2
	})
	op(0, nethttp.MethodPost, "/api/v1/rules/ha-tick/pause", nil, nethttp.StatusOK, "pause")

	// The log holds every acknowledged operation; the rule fired once per tick.
	var recs []eventstore.Record
	for from := uint64(1); ; {
		page, err := st.ReadAll(ctx, from, 1000)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, page...)
		if len(page) < 1000 {
			break
		}
		from = page[len(page)-1].Position + 1
	}
	types := map[string]int{}
	fleetStream := ""
	ticks := map[string]int{}
	for _, r := range recs {
		types[r.Type]++
		if r.Type == "topic.created.v1" && bytes.Contains(r.Data, []byte(topic)) {
			fleetStream = r.Stream
		}
		if r.Type == "rule.fired.v1" {
			var fe struct {
				Cause string `json:"cause"`
			}
			_ = json.Unmarshal(r.Data, &fe)
			ticks[fe.Cause]++
		}
	}
	rotations := 0
	for _, r := range recs {
		if r.Type == "topic.key_rotated.v1" && r.Stream == fleetStream {
			rotations++
		}
	}
	if got := types["client.registered.v1"]; int64(got) < get(&acked, "client") || int64(got) > get(&acked, "client")+get(&ambiguous, "client") {
		t.Errorf("%d client.registered events; %d acknowledged, %d ambiguous", got, get(&acked, "client"), get(&ambiguous, "client"))
	}
	if int64(rotations) < get(&acked, "rotate") || int64(rotations) > get(&acked, "rotate")+get(&ambiguous, "rotate") {
		t.Errorf("%d rotations of %s in the log; %d acknowledged, %d ambiguous", rotations, topic, get(&acked, "rotate"), get(&ambiguous, "rotate"))
	}
	if len(ticks) < 2 {
		t.Errorf("the scheduled rule fired %d times, want at least the two after the kill", len(ticks))
	}
	for cause, k := range ticks {
		if k != 1 {
			t.Errorf("tick %s fired %d times", cause, k)
		}
	}
	t.Logf("log: %d records (%d lease events), %d rotations of %s, %d schedule fires, acked %d ops (%d ambiguous attempts)",
		len(recs), types["lease.acquired.v1"]+types["lease.renewed.v1"]+types["lease.released.v1"], rotations, topic, len(ticks),
		get(&acked, "client")+get(&acked, "rotate")+get(&acked, "topic")+get(&acked, "attach"), get(&ambiguous, "client")+get(&ambiguous, "rotate"))
	for _, f := range fleet {
		f.mu.Lock()
		if len(f.errs) != 0 {
			t.Errorf("device %s rejected a command: %v", f.name, f.errs)
		}
		f.mu.Unlock()
	}

	// Replay equals live on each survivor.
	replay := func() string {
		out, err := exec.Command(bin, "replay", "--store", nc.clientURLs()+"?stream=HA&prefix=ha", "--json").Output()
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		var rs struct {
			Clients []struct {
				Name       string `json:"name"`
				KeyVersion uint64 `json:"key_version"`
				Topics     int    `json:"topics"`
			} `json:"clients"`
			Topics []struct {
				Name       string `json:"name"`
				KeyVersion uint64 `json:"key_version"`
				Clients    int    `json:"clients"`
			} `json:"topics"`
		}
		if err := json.Unmarshal(out, &rs); err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, c := range rs.Clients {
			lines = append(lines, fmt.Sprintf("client %s v%d topics=%d", c.Name, c.KeyVersion, c.Topics))
		}
		for _, tp := range rs.Topics {
			lines = append(lines, fmt.Sprintf("topic %s v%d clients=%d", tp.Name, tp.KeyVersion, tp.Clients))
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	liveState := func(in *haInstance) string {
		var lines []string
		for _, kind := range []string{"clients", "topics"} {
			cursor := ""
			for {
				code, body := httpDo(t, nethttp.MethodGet, in.base+"/api/v1/"+kind+"?limit=1000&cursor="+url.QueryEscape(cursor), token, nil)
				if code != nethttp.StatusOK {
					t.Fatalf("%s list %s: %d %s", in.name, kind, code, body)
				}
				var page struct {
					Items []struct {
						Name       string `json:"name"`
						KeyVersion uint64 `json:"key_version"`
						Topics     int    `json:"topics"`
						Clients    int    `json:"clients"`
					} `json:"items"`
					Next string `json:"next"`
				}
				if err := json.Unmarshal(body, &page); err != nil {
					t.Fatal(err)
				}
				for _, it := range page.Items {
					if kind == "clients" {
						lines = append(lines, fmt.Sprintf("client %s v%d topics=%d", it.Name, it.KeyVersion, it.Topics))
					} else {
						lines = append(lines, fmt.Sprintf("topic %s v%d clients=%d", it.Name, it.KeyVersion, it.Clients))
					}
				}
				if page.Next == "" {
					break
				}
				cursor = page.Next
			}
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	// The rule is paused: after its last fire settles, the state no longer
	// changes and the replay and every survivor agree.
	var want string
	testwait.For(t, "replay and every survivor to agree", func() bool {
		want = replay()
		for _, in := range live() {
			if liveState(in) != want {
				return false
			}
		}
		return true
	})
	if c := strings.Count(want, "client "); c != n {
		t.Fatalf("replay shows %d clients, want %d", c, n)
	}
}
