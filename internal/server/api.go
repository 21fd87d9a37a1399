package server

import (
	nethttp "net/http"

	"github.com/e4c2/e4c2/internal/config"
	httpapi "github.com/e4c2/e4c2/transport/http"
)

// apiConfig is the part of the API's configuration that comes from the
// server's: the hardening switches an admin sets.
func apiConfig(cfg config.Config) httpapi.Config {
	return httpapi.Config{
		MetricsAuth:          cfg.MetricsAuth,
		TLS:                  cfg.TLSCertFile != "",
		AuthFailLimit:        cfg.AuthFailLimit,
		DisableCryptoHelpers: cfg.DisableCryptoHelpers,
	}
}

// apiHandler builds the HTTP API over the service.
func (s *Server) apiHandler(metricsHandler nethttp.Handler) (nethttp.Handler, func(), error) {
	hc := apiConfig(s.cfg)
	hc.Metrics = metricsHandler
	hc.RateLimit, hc.RateBurst = s.cfg.APIRate, s.cfg.APIBurst
	hc.Ready = s.ready
	hc.Rules = httpapi.NewEngineRules(s.rules)
	api, err := httpapi.New(hc, httpapi.NewServiceBackend(s.svc), s.log.With("component", "http"))
	if err != nil {
		return nil, nil, err
	}
	return api.Handler(), api.Close, nil
}
