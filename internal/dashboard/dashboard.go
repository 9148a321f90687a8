// Package dashboard draws the Grafana dashboard of deploy/grafana as an
// SVG picture, from the same queries run against a Prometheus: the
// dashboard's panels, their titles, units and legends, read from its JSON,
// so that the picture and the dashboard cannot drift apart. It is what the
// README shows where no Grafana is at hand (the process stack runs
// Prometheus only), and what a test of the stack checks: that every panel's
// queries answer with the series the service exports.
package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Dashboard is what the picture needs of a Grafana dashboard.
type Dashboard struct {
	Title  string  `json:"title"`
	Panels []Panel `json:"panels"`
}

// Panel is one Grafana panel: its place on the 24-column grid, its unit
// and its queries.
type Panel struct {
	Title   string `json:"title"`
	GridPos struct {
		X, Y, W, H int
	} `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []Target `json:"targets"`
}

// Target is one query of a panel and how its series are named.
type Target struct {
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
}

// Load reads a Grafana dashboard's JSON.
func Load(path string) (Dashboard, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Dashboard{}, err
	}
	var d Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return Dashboard{}, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// Querier runs a range query; Prometheus' v1.API is one.
type Querier interface {
	QueryRange(ctx context.Context, query string, r v1.Range, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error)
}

// Series is one line of a panel.
type Series struct {
	Name   string
	Points []model.SamplePair
}

// Data is every panel's series, in the dashboard's order.
type Data struct {
	Range  v1.Range
	Panels [][]Series
}

// Query runs every panel's queries over r. A query that fails fails the
// whole: a dashboard with a broken query is a broken dashboard.
func Query(ctx context.Context, q Querier, d Dashboard, r v1.Range) (Data, error) {
	data := Data{Range: r, Panels: make([][]Series, len(d.Panels))}
	for i, p := range d.Panels {
		for _, t := range p.Targets {
			v, _, _, err := q.QueryRange(ctx, t.Expr, r)
			if err != nil {
				return Data{}, fmt.Errorf("panel %q: %s: %w", p.Title, t.Expr, err)
			}
			m, ok := v.(model.Matrix)
			if !ok {
				return Data{}, fmt.Errorf("panel %q: %s: a %s, not a range", p.Title, t.Expr, v.Type())
			}
			for _, s := range m {
				data.Panels[i] = append(data.Panels[i], Series{Name: legend(t.LegendFormat, s.Metric), Points: s.Values})
			}
		}
	}
	return data, nil
}

var legendLabel = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

// legend names a series as Grafana does: {{label}} replaced by its value;
// without a format, the series' labels.
func legend(format string, m model.Metric) string {
	if format == "" {
		return m.String()
	}
	return legendLabel.ReplaceAllStringFunc(format, func(s string) string {
		return string(m[model.LabelName(legendLabel.FindStringSubmatch(s)[1])])
	})
}

// Layout of the picture, in pixels: Grafana's 24 columns over the width,
// and each grid row unitH high.
const (
	width   = 1200
	unitH   = 34
	margin  = 8
	headerH = 44
	legendH = 16 // a legend line
)

var colors = []string{"#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d", "#eeca3b", "#bab0ac"}

// Render draws the dashboard with its data as SVG.
func Render(d Dashboard, data Data) []byte {
	bottom := 0
	for _, p := range d.Panels {
		bottom = max(bottom, p.GridPos.Y+p.GridPos.H)
	}
	height := headerH + bottom*unitH + margin
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`, width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#111217"/>`, width, height)
	text(&b, margin+4, 28, "start", 18, "#d8d9da", fmt.Sprintf("%s — %s to %s UTC", d.Title,
		data.Range.Start.UTC().Format("2006-01-02 15:04:05"), data.Range.End.UTC().Format("15:04:05")))
	col := float64(width-margin) / 24
	for i, p := range d.Panels {
		x := float64(margin) + float64(p.GridPos.X)*col
		y := float64(headerH + p.GridPos.Y*unitH)
		w := float64(p.GridPos.W)*col - margin
		h := float64(p.GridPos.H*unitH) - margin
		var series []Series
		if i < len(data.Panels) {
			series = data.Panels[i]
		}
		drawPanel(&b, p, series, data.Range, x, y, w, h)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func drawPanel(b *bytes.Buffer, p Panel, series []Series, r v1.Range, x, y, w, h float64) {
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="3" fill="#181b1f" stroke="#2c3235"/>`, x, y, w, h)
	text(b, x+8, y+18, "start", 13, "#d8d9da", p.Title)
	legends := min(len(series), 6)
	plotL, plotR := x+58, x+w-10
	plotT, plotB := y+28, y+h-24-float64(max(legends, 1))*legendH // the time axis, then the legends
	if len(series) == 0 {
		text(b, (plotL+plotR)/2, (plotT+plotB)/2, "middle", 12, "#8e8e8e", "no data")
		return
	}
	lo, hi := valueRange(series)
	yOf := func(v float64) float64 { return plotB - (v-lo)/(hi-lo)*(plotB-plotT) }
	span := r.End.Sub(r.Start).Seconds()
	xOf := func(t model.Time) float64 { return plotL + t.Time().Sub(r.Start).Seconds()/span*(plotR-plotL) }
	for _, v := range []float64{lo, (lo + hi) / 2, hi} {
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#2c3235"/>`, plotL, plotR, yOf(v), yOf(v))
		text(b, plotL-4, yOf(v)+4, "end", 10, "#8e8e8e", format(v, p.FieldConfig.Defaults.Unit))
	}
	for _, at := range []time.Time{r.Start, r.Start.Add(r.End.Sub(r.Start) / 2), r.End} {
		text(b, xOf(model.TimeFromUnixNano(at.UnixNano())), plotB+12, "middle", 10, "#8e8e8e", at.UTC().Format("15:04:05"))
	}
	sort.SliceStable(series, func(i, j int) bool { return series[i].Name < series[j].Name })
	for i, s := range series {
		color := colors[i%len(colors)]
		var pts strings.Builder
		for _, pt := range s.Points {
			v := float64(pt.Value)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", xOf(pt.Timestamp), yOf(v))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, color, strings.TrimSpace(pts.String()))
		if i < legends {
			ly := plotB + 14 + float64(i+1)*legendH - 4
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="10" height="3" fill="%s"/>`, plotL, ly-4, color)
			name := s.Name
			if i == legends-1 && len(series) > legends {
				name += fmt.Sprintf(" (and %d more)", len(series)-legends)
			}
			text(b, plotL+14, ly, "start", 10, "#c7d0d9", name)
		}
	}
}

// valueRange is the span of the values drawn: from zero (or below, for
// negative values) to the largest, never empty.
func valueRange(series []Series) (lo, hi float64) {
	for _, s := range series {
		for _, pt := range s.Points {
			v := float64(pt.Value)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if hi == lo {
		hi = lo + 1
	}
	return lo, hi
}

// format writes v in the panel's Grafana unit.
func format(v float64, unit string) string {
	switch unit {
	case "s":
		switch {
		case v == 0:
			return "0"
		case v < 1e-3:
			return trim(v*1e6) + " µs"
		case v < 1:
			return trim(v*1e3) + " ms"
		}
		return trim(v) + " s"
	case "percentunit":
		return trim(v*100) + "%"
	case "reqps":
		return si(v) + "/s"
	}
	return si(v)
}

func si(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e3:
		return trim(v/1e3) + "k"
	}
	return trim(v)
}

func trim(v float64) string { return fmt.Sprintf("%.3g", v) }

func text(b *bytes.Buffer, x, y float64, anchor string, size int, fill, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d" fill="%s">`, x, y, anchor, size, fill)
	_ = xml.EscapeText(b, []byte(s))
	b.WriteString("</text>")
}

// FromPrometheus runs the dashboard's queries against the Prometheus at
// address (http://host:port) over r.
func FromPrometheus(ctx context.Context, address string, d Dashboard, r v1.Range) (Data, error) {
	c, err := api.NewClient(api.Config{Address: address})
	if err != nil {
		return Data{}, err
	}
	return Query(ctx, v1.NewAPI(c), d, r)
}

// Peak is the largest value of the panel titled title; false when the
// panel has no such title or no data.
func (data Data) Peak(d Dashboard, title string) (float64, bool) {
	for i, p := range d.Panels {
		if p.Title != title || i >= len(data.Panels) {
			continue
		}
		_, hi := valueRange(data.Panels[i])
		return hi, len(data.Panels[i]) > 0
	}
	return 0, false
}
