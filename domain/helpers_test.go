package domain_test

import "github.com/e4c2/e4c2/domain"

// id returns an ID whose bytes count up from b, so that ids of a test
// differ and read back recognisably.
func id(b byte) domain.ID {
	var x domain.ID
	for i := range x {
		x[i] = b + byte(i)
	}
	return x
}
