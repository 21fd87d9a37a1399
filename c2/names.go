package c2

import (
	"errors"

	"github.com/e4c2/e4c2/domain"
)

// named returns a function that passes a result on and, in a refusal,
// puts back the client names the caller typed: Decide only knows ids, so
// "attach ghost ..." said "unknown client 8f3a..." and the operator could
// not tell which of the names it was.
func named(refs ...ClientRef) func(Result, error) (Result, error) {
	return func(res Result, err error) (Result, error) {
		var oe *domain.OpError
		if err == nil || !errors.As(err, &oe) {
			return res, err
		}
		for _, r := range refs {
			if r.Name != "" && oe.Subject == domain.ClientID(r.Name).String() {
				oe.Subject = r.Name
				break
			}
		}
		return res, err
	}
}
