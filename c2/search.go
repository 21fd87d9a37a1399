package c2

import "github.com/e4c2/e4c2/projections"

// SearchClients returns a page of the clients whose name contains query
// (case-insensitive) or whose hex id starts with it, in registration
// order; the cursor resumes the search.
func (s *Service) SearchClients(query, cursor string, limit int) ([]projections.ClientInfo, string, error) {
	n, err := parseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	out, next := s.ks.SearchClients(query, n, clampLimit(limit))
	return out, fmtCursor(next), nil
}
