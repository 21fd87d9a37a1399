package server

import (
	nethttp "net/http"

	"github.com/e4c2/e4c2/internal/config"
	httpapi "github.com/e4c2/e4c2/transport/http"
	"github.com/e4c2/e4c2/transport/http/console"
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
	if s.monitor != nil {
		hc.Monitor = s.monitor // never a typed nil: off is nil
	}
	backend := httpapi.NewServiceBackend(s.svc)
	api, err := httpapi.New(hc, backend, s.log.With("component", "http"))
	if err != nil {
		return nil, nil, err
	}
	ui, err := console.New(console.Config{
		Backend:  backend,
		Rules:    hc.Rules,
		Ready:    s.ready,
		Position: s.svc.Position,
		AsOf:     s.svc.StateAsOf,
		TLS:      hc.TLS,
		ReadOnly: s.cfg.ReadOnly,
		Monitor:  s.cfg.Monitor.Enabled && !s.cfg.ReadOnly,
		Logger:   s.log.With("component", "console"),
	})
	if err != nil {
		return nil, nil, err
	}
	closeAll := func() { api.Close(); ui.Close() }
	return console.Mount(ui, api.Handler()), closeAll, nil
}
