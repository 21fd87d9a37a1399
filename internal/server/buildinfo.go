package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/e4c2/e4c2/internal/buildinfo"
)

// registerBuildInfo exposes e4c2_build_info{version,revision,go} = 1, so a
// dashboard shows which build each instance runs.
func registerBuildInfo(reg *prometheus.Registry) {
	i := buildinfo.Read()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "e4c2_build_info",
		Help:        "The build of this e4c2 (value 1): module version, VCS revision, Go version.",
		ConstLabels: prometheus.Labels{"version": i.Version, "revision": i.Revision, "go": i.GoVersion},
	})
	g.Set(1)
	reg.MustRegister(g)
}
