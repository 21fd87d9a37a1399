package benchmarks

import (
	"context"
	"os"
	"testing"
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
