package http

import "context"

// ClientSearcher is optionally implemented by a Backend that can search
// clients by name or id prefix itself (the web console uses it; without
// it the console pages through Clients).
type ClientSearcher interface {
	SearchClients(ctx context.Context, query string, p PageRequest) (Page[Client], error)
}

var _ ClientSearcher = (*ServiceBackend)(nil)

// SearchClients implements ClientSearcher.
func (b *ServiceBackend) SearchClients(ctx context.Context, query string, p PageRequest) (Page[Client], error) {
	cs, next, err := b.svc.SearchClients(query, p.Cursor, p.Limit)
	if err != nil {
		return Page[Client]{}, err
	}
	return Page[Client]{Items: mapSlice(cs, clientView), Next: next}, nil
}
