package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// promtool checks the Prometheus configuration and the alert rules, and
// runs the rules' unit tests. Without promtool (Debian's prometheus
// package) the test skips, and fails under CI=true.
func TestPrometheusRulesAndConfig(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (apt-get install prometheus)")
		}
		t.Skip("promtool is not installed (apt-get install prometheus); CI=true fails instead")
	}
	for _, args := range [][]string{
		{"check", "rules", "deploy/prometheus/seckill.rules.yml"},
		{"check", "config", "deploy/prometheus/prometheus.yml"},
		{"test", "rules", "deploy/prometheus/seckill.rules.test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// The dashboard is JSON Grafana loads, reading only the data source the
// provisioning names and only metrics the service serves.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("deploy/grafana/dashboards/seckill.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string
		Panels []struct {
			Title      string
			Datasource struct{ UID string }
			Targets    []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	ds, err := os.ReadFile("deploy/grafana/provisioning/datasources/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	metricName := regexp.MustCompile(`\bseckill_[a-z_]+`)
	served := servedMetrics(t)
	want := []string{"Sales per second", "Stock in Redis and MySQL", "p99", "lag", "Errors"}
	var titles string
	for _, p := range d.Panels {
		titles += p.Title + "\n"
		if !strings.Contains(string(ds), "uid: "+p.Datasource.UID) {
			t.Errorf("panel %q reads data source %q, which is not provisioned", p.Title, p.Datasource.UID)
		}
		for _, tg := range p.Targets {
			for _, name := range metricName.FindAllString(tg.Expr, -1) {
				if !served[strings.TrimSuffix(name, "_bucket")] {
					t.Errorf("panel %q queries %s, which the service does not serve", p.Title, name)
				}
			}
		}
	}
	for _, w := range want {
		if !strings.Contains(titles, w) {
			t.Errorf("no panel shows %q; panels:\n%s", w, titles)
		}
	}
}

// servedMetrics are the names the README's metrics table documents, the
// table TestMetricsCountTheAnswersGiven's instance serves.
func servedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile("`(seckill_[a-z_]+)`").FindAllStringSubmatch(string(readme), -1) {
		out[m[1]] = true
	}
	return out
}
