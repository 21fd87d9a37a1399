package benchmarks

import (
	"context"
	"testing"
)

func TestFanoutSmoke(t *testing.T) {
	for _, broker := range []string{"embedded", "mosquitto"} {
		t.Run(broker, func(t *testing.T) {
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
