package stack

import (
	"context"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/go-seckill/seckill/internal/dashboard"
)

// DashboardFile is the Grafana dashboard of the deployment, relative to
// the repository.
const DashboardFile = "deploy/grafana/dashboards/seckill.json"

// Dashboard runs the queries of the deployment's Grafana dashboard against
// the stack's Prometheus from start to end. The stack runs no Grafana (see
// ComposeOnly); the same panels are drawn by package dashboard instead.
func (st *State) Dashboard(ctx context.Context, start, end time.Time) (dashboard.Dashboard, dashboard.Data, error) {
	d, err := dashboard.Load(filepath.Join(st.Root, DashboardFile))
	if err != nil {
		return d, dashboard.Data{}, err
	}
	step := max(end.Sub(start)/200, time.Second)
	data, err := dashboard.FromPrometheus(ctx, st.PrometheusURL(), d, v1.Range{Start: start, End: end, Step: step})
	return d, data, err
}

// DrawDashboard writes the dashboard's panels from start to end as SVG.
func (st *State) DrawDashboard(ctx context.Context, start, end time.Time, out string) error {
	d, data, err := st.Dashboard(ctx, start, end)
	if err != nil {
		return err
	}
	return os.WriteFile(out, dashboard.Render(d, data), 0o644)
}
