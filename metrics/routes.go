package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

func newStatementsByRoute() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "dependency_statements_by_route_total",
		Help: "Database statements (exec, query, begin, prepare) made while serving a request, by dependency and route."},
		[]string{"dependency", "route"})
}

type routeKey struct{}

// WithRoute marks ctx as serving route, for the statements it makes.
func WithRoute(ctx context.Context, route string) context.Context {
	return context.WithValue(ctx, routeKey{}, route)
}

// ObserveStatement counts a database statement made with ctx, if ctx
// serves a route.
func (m *Metrics) ObserveStatement(ctx context.Context, dependency string) {
	if route, ok := ctx.Value(routeKey{}).(string); ok {
		m.StatementsByRoute.WithLabelValues(dependency, route).Inc()
	}
}
