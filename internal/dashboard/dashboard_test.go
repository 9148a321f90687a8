package dashboard

import (
	"context"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// fakePrometheus answers each query with the series it was given for it.
type fakePrometheus map[string]model.Matrix

func (f fakePrometheus) QueryRange(_ context.Context, q string, _ v1.Range, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	m, ok := f[q]
	if !ok {
		return nil, nil, nil, errors.New("bad_data: unknown query")
	}
	return m, nil, nil, nil
}

func series(labels model.Metric, values ...float64) *model.SampleStream {
	s := &model.SampleStream{Metric: labels}
	for i, v := range values {
		s.Values = append(s.Values, model.SamplePair{Timestamp: model.Time(int64(i) * 5000), Value: model.SampleValue(v)})
	}
	return s
}

func TestTheRepositorysDashboardIsDrawnPanelByPanel(t *testing.T) {
	d, err := Load("../../deploy/grafana/dashboards/seckill.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	// Every query answers one series named by its legend, but the first
	// panel's, which answers two.
	answers := fakePrometheus{}
	for i, p := range d.Panels {
		for _, tg := range p.Targets {
			answers[tg.Expr] = model.Matrix{series(model.Metric{"version": "V6", "route": "/order", "code": "503", "goods_id": "7", "topic": "stock", "channel": "apply", "dependency": "redis", "op": "take", "instance": "a", "kind": "goods"}, 1, 2, 3)}
			if i == 0 {
				answers[tg.Expr] = append(answers[tg.Expr], series(model.Metric{"version": "V7"}, 4, 5))
			}
		}
	}
	r := v1.Range{Start: time.Unix(0, 0), End: time.Unix(15, 0), Step: 5 * time.Second}
	data, err := Query(context.Background(), answers, d, r)
	if err != nil {
		t.Fatal(err)
	}
	svg := string(Render(d, data))
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Fatalf("not well-formed SVG: %v", err)
	}
	for _, p := range d.Panels {
		if !strings.Contains(svg, ">"+escape(p.Title)+"<") {
			t.Errorf("panel %q is missing", p.Title)
		}
	}
	if n := strings.Count(svg, "<polyline"); n != len(answers)+len(d.Panels[0].Targets) {
		t.Errorf("%d lines drawn, want one per series: %d", n, len(answers)+len(d.Panels[0].Targets))
	}
	// Legends as Grafana writes them: {{label}} replaced by its value.
	for _, want := range []string{">V6<", ">V7<", ">goods 7 redis<", ">depth stock/apply<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("legend %s missing", want)
		}
	}
	if strings.Contains(svg, "no data") {
		t.Error("a panel with data is drawn as empty")
	}
}

func TestAPanelWithoutSeriesSaysSoAndABrokenQueryFails(t *testing.T) {
	d := Dashboard{Title: "t", Panels: []Panel{{Title: "empty", Targets: []Target{{Expr: "up"}}}}}
	d.Panels[0].GridPos.W, d.Panels[0].GridPos.H = 12, 8
	data, err := Query(context.Background(), fakePrometheus{"up": nil}, d, v1.Range{Start: time.Unix(0, 0), End: time.Unix(10, 0), Step: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if svg := string(Render(d, data)); !strings.Contains(svg, "no data") {
		t.Error("an empty panel is not marked as having no data")
	}
	if _, err := Query(context.Background(), fakePrometheus{}, d, v1.Range{}); err == nil || !strings.Contains(err.Error(), `panel "empty"`) {
		t.Errorf("a failing query answered %v, want an error naming the panel", err)
	}
}

func TestUnitsAreWrittenAsGrafanaWritesThem(t *testing.T) {
	for _, c := range []struct {
		v    float64
		unit string
		want string
	}{
		{0.0123, "s", "12.3 ms"}, {2, "s", "2 s"}, {0.00005, "s", "50 µs"}, {0.5, "percentunit", "50%"},
		{1500, "reqps", "1.5k/s"}, {2.5e6, "short", "2.5M"}, {7, "", "7"},
	} {
		if got := format(c.v, c.unit); got != c.want {
			t.Errorf("format(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
