package c2

import (
	"context"

	"github.com/e4c2/e4c2/domain"
)

// OverwriteClientForTest registers over an existing client the way versions
// before the explicit create/replace did (client.registered, nothing sent).
// The service no longer offers it, but stores written by those versions
// hold such events and the projections must still handle them.
func (s *Service) OverwriteClientForTest(ctx context.Context, o Origin, c ClientRef, key []byte, role domain.Role) (Result, error) {
	id, err := c.Resolve()
	if err != nil {
		return Result{}, err
	}
	return s.exec(ctx, o, func() domain.Command {
		return domain.RegisterClient{Client: id, Name: c.Name, Role: role, Key: clone(key)}
	}, func(domain.Command) domain.State { return s.clientState(id) })
}
