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
			res, err := Fanout(context.Background(), FanoutOptions{Devices: 50, Broker: broker, Rotations: 2, Dir: t.TempDir(), Farm: testFarm})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.AllHold) != 2 || res.DeviceErrors != 0 {
				t.Fatalf("result %+v", res)
			}
			t.Logf("%+v", res)
		})
	}
}
