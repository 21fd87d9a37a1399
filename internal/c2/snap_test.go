package c2_test

import (
	"reflect"

	"github.com/e4c2/e4c2/projections"
)

func equalSnap(a, b projections.Snapshot) bool { return reflect.DeepEqual(a, b) }
