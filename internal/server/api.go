package server

import (
	nethttp "net/http"

	httpapi "github.com/e4c2/e4c2/transport/http"
)

// apiHandler builds the HTTP API over the service.
func (s *Server) apiHandler(metricsHandler nethttp.Handler) (nethttp.Handler, func(), error) {
	api, err := httpapi.New(httpapi.Config{
		Metrics:   metricsHandler,
		RateLimit: s.cfg.APIRate,
		RateBurst: s.cfg.APIBurst,
		Ready:     s.ready,
		Rules:     httpapi.NewEngineRules(s.rules),
	}, httpapi.NewServiceBackend(s.svc), s.log.With("component", "http"))
	if err != nil {
		return nil, nil, err
	}
	return api.Handler(), api.Close, nil
}
