package benchmarks

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

func TestFanoutSmoke(t *testing.T) {
	for _, broker := range []string{"embedded", "mosquitto"} {
		t.Run(broker, func(t *testing.T) {
			if broker == "mosquitto" {
				if _, err := os.Stat(MosquittoPath); err != nil {
					t.Skipf("mosquitto is not installed at %s (apt-get install mosquitto)", MosquittoPath)
				}
			}
			o := FanoutOptions{Devices: 50, Broker: broker, Rotations: 2, Dir: t.TempDir(), Farm: testFarm}
			floor, err := Floor(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if len(floor.Rounds) != 2 || floor.Payload == 0 {
				t.Fatalf("floor %+v", floor)
			}
			res, err := Fanout(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.AllHold) != 2 || len(res.Confirmed) != 2 || res.DeviceErrors != 0 {
				t.Fatalf("result %+v", res)
			}
			for i := range res.AllHold {
				if res.AllHold[i] <= 0 || res.Confirmed[i] < res.AllHold[i] {
					t.Errorf("rotation %d: all hold %v, confirmed %v", i, res.AllHold[i], res.Confirmed[i])
				}
			}
			t.Logf("floor %v, all hold %v, confirmed %v", spreadOf(floor.Rounds), spreadOf(res.AllHold), spreadOf(res.Confirmed))
		})
	}
}

// TestFanoutChecksTheC2Key: devices that hold a new key which is not the
// one the C2 reports for the version (here: the digest the farm must match
// is altered) never count as done, and the rotation fails rather than
// yielding a time.
func TestFanoutChecksTheC2Key(t *testing.T) {
	_, err := Fanout(context.Background(), FanoutOptions{Devices: 10, Rotations: 1, Dir: t.TempDir(), Farm: testFarm,
		wait: 3 * time.Second, keyDigest: func(d []byte) []byte { d = append([]byte(nil), d...); d[0] ^= 1; return d }})
	if !errors.Is(err, errFarm) || !strings.Contains(err.Error(), "rotation 0") {
		t.Fatalf("err = %v, want the farm's timeout in rotation 0", err)
	}
}

// TestFarmReportsDeviceErrors: a command a device cannot apply is an error
// of the farm at once, not a device that silently never finishes.
func TestFarmReportsDeviceErrors(t *testing.T) {
	ctx := context.Background()
	s, err := suitesForTest()
	if err != nil {
		t.Fatal(err)
	}
	names, _, devs, err := makeDevices(s, core.SymKey, "err", 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := startFloorBroker(ctx, t.TempDir(), "embedded", 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	f, err := startFarm(testFarm, farmSpec{Broker: b.addr, Suite: "standard", Mode: "sk", Topic: "t", Devices: devs}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	if err := f.arm(false); err != nil {
		t.Fatal(err)
	}
	if err := b.publish(ctx, core.ControlTopic(s.ID(names[1])), []byte("not a command")); err != nil {
		t.Fatal(err)
	}
	_, err = f.wait("done", 20*time.Second)
	if !errors.Is(err, errFarm) || !strings.Contains(err.Error(), names[1]) {
		t.Fatalf("err = %v, want the farm's error naming %s", err, names[1])
	}
}

func suitesForTest() (core.Suite, error) { return suites.ForMode("standard", core.SymKey) }

// TestDeviceCredentials: the farm's devices present what an authenticating
// broker checks (client/credential). The embedded broker configured with
// the devices' SK passwords, as the floor starts it, accepts a device's
// credential and refuses a wrong password; a PK device's credential is
// built from its identity.
func TestDeviceCredentials(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []core.Mode{core.SymKey, core.PubKey} {
		s, err := suites.ForMode("standard", mode)
		if err != nil {
			t.Fatal(err)
		}
		names, _, devs, err := makeDevices(s, mode, "cred", 1)
		if err != nil {
			t.Fatal(err)
		}
		cfg := client.Config{Suite: s, Mode: mode, Name: names[0], Key: devs[0].Key}
		if mode == core.PubKey {
			c2k, err := s.(core.PKSuite).GenerateC2Key()
			if err != nil {
				t.Fatal(err)
			}
			cfg.C2PublicKey = c2k.PublicKey()
		}
		c, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		a, err := deviceAuth(c, devs[0].Key)
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		id := s.ID(names[0])
		if a.Username != credential.Username(id) || a.ClientID != credential.ClientID(id) || a.Password == "" {
			t.Fatalf("%v: auth %q %q (password set: %v)", mode, a.ClientID, a.Username, a.Password != "")
		}
		if mode == core.PubKey {
			pk := s.(core.PKSuite)
			ident, err := pk.ParseIdentity(devs[0].Key)
			if err != nil {
				t.Fatal(err)
			}
			bound, err := pk.BindIdentity(ident, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := credential.VerifyPK(pk, bound.SigningPublicKey(), id, []byte(a.Password), time.Now()); err != nil {
				t.Fatalf("PK password does not verify: %v", err)
			}
			continue
		}
		b, err := startFloorBroker(ctx, t.TempDir(), "embedded", 4, map[string]string{a.Username: a.Password})
		if err != nil {
			t.Fatal(err)
		}
		lc, err := liteDial(b.addr, a, 5*time.Second)
		if err != nil {
			b.close()
			t.Fatalf("the broker refused the device's credential: %v", err)
		}
		_ = lc.Close()
		bad := a
		bad.Password = credential.SKPassword(make([]byte, 32), id)
		if lc, err := liteDial(b.addr, bad, 5*time.Second); err == nil {
			_ = lc.Close()
			b.close()
			t.Fatal("the broker accepted a wrong password")
		}
		b.close()
	}
}
