package c2_test

import (
	"errors"
	"reflect"

	"github.com/e4c2/e4c2/projections"
)

func equalSnap(a, b projections.Snapshot) bool { return reflect.DeepEqual(a, b) }

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func projectionsAll() projections.AsOf { return projections.AsOf{} }
