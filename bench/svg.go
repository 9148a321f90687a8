package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"slices"
	"time"
)

// chartBar is one version (or coupon sub-stock count) in one phase (or
// Redis).
type chartBar struct {
	Version string
	Phase   string
	RPS     float64
	P99     time.Duration
	Bound   float64 // the rate of the ceiling that bounds it; 0 for none
	Failed  bool
}

// chartLine is a ceiling drawn across the requests/s panel.
type chartLine struct {
	Label string
	Rate  float64
}

// barColors colour the phases of a chart in their order.
var barColors = []string{"#4c78a8", "#f58518", "#54a24b", "#b279a2"}

// Layout of the chart, in pixels.
const (
	chartW      = 980
	plotLeft    = 70
	plotRight   = 790 // ceiling labels go to the right of this
	rpsTop      = 85
	rpsBottom   = 375
	p99Top      = 440
	p99Bottom   = 590
	chartH      = 640
	labelMinGap = 11
)

// renderChart draws requests/s per version and phase (log scale, ceilings
// as dashed lines) above p99 latency (log scale). Log scales because the
// versions span two orders of magnitude; the axes say so. phases are the
// bars of each group, in order, with their legend.
func renderChart(title string, phases []string, bars []chartBar, lines []chartLine) []byte {
	color := func(phase string) string {
		i := slices.Index(phases, phase)
		if i < 0 {
			return "#999"
		}
		return barColors[i%len(barColors)]
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	text(&b, plotLeft, 24, "start", 16, "#000", title)

	// Legend.
	x := float64(plotLeft)
	for _, ph := range phases {
		fmt.Fprintf(&b, `<rect x="%.0f" y="36" width="12" height="12" fill="%s"/>`+"\n", x, color(ph))
		text(&b, x+16, 46, "start", 12, "#000", ph)
		x += float64(max(90, 30+7*len(ph)))
	}
	fmt.Fprintf(&b, `<line x1="%.0f" y1="42" x2="%.0f" y2="42" stroke="#555" stroke-dasharray="5,3"/>`+"\n", x, x+24)
	text(&b, x+28, 46, "start", 12, "#000", "ceiling measured in the same run")
	x += 250
	fmt.Fprintf(&b, `<line x1="%.0f" y1="42" x2="%.0f" y2="42" stroke="#000" stroke-width="2"/>`+"\n", x, x+16)
	text(&b, x+20, 46, "start", 12, "#000", "the bar's bound")
	text(&b, x+130, 46, "start", 12, "#c00", "FAILED = an invariant broke")

	versions := []string{}
	for _, br := range bars {
		if !slices.Contains(versions, br.Version) {
			versions = append(versions, br.Version)
		}
	}
	groupW := float64(plotRight-plotLeft) / float64(max(1, len(versions)))
	n := float64(max(1, len(phases)))
	barW := math.Min(40, groupW*0.7/n)
	barX := func(br chartBar) float64 {
		gx := float64(plotLeft) + groupW*float64(slices.Index(versions, br.Version)) + groupW/2
		i := float64(max(0, slices.Index(phases, br.Phase)))
		return gx - (n*barW+(n-1)*4)/2 + i*(barW+4)
	}

	// Requests/s panel.
	var rpsVals []float64
	for _, br := range bars {
		rpsVals = append(rpsVals, br.RPS)
	}
	for _, l := range lines {
		rpsVals = append(rpsVals, l.Rate)
	}
	ax := newLogAxis(rpsVals, rpsTop, rpsBottom)
	ax.draw(&b, "requests/s (log scale)", func(v float64) string { return si(v) })
	for _, br := range bars {
		label := si(br.RPS)
		if br.Failed {
			label = "FAILED"
		}
		drawBar(&b, barX(br), barW, ax, br.RPS, color(br.Phase), label, br.Failed)
		if br.Bound > 0 {
			// A solid tick across the bar at its bound: the gap is what the
			// version leaves on the table.
			y := ax.y(br.Bound)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-width="2"/>`+"\n", barX(br)-3, y, barX(br)+barW+3, y)
		}
	}
	// Ceilings: dashed lines, labels at the right, nudged apart when close.
	sorted := slices.Clone(lines)
	slices.SortFunc(sorted, func(a, c chartLine) int { return int(math.Copysign(1, c.Rate-a.Rate)) })
	lastY := -100.0
	for _, l := range sorted {
		if l.Rate <= 0 {
			continue
		}
		y := ax.y(l.Rate)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#555" stroke-dasharray="5,3"/>`+"\n", plotLeft, y, plotRight, y)
		ly := math.Max(y+4, lastY+labelMinGap)
		lastY = ly
		text(&b, plotRight+6, ly, "start", 11, "#333", fmt.Sprintf("%s %s", l.Label, si(l.Rate)))
	}

	// p99 panel.
	var p99s []float64
	for _, br := range bars {
		p99s = append(p99s, ms(br.P99))
	}
	ay := newLogAxis(p99s, p99Top, p99Bottom)
	ay.draw(&b, "p99 latency, ms (log scale)", func(v float64) string { return trimFloat(v) })
	for _, br := range bars {
		drawBar(&b, barX(br), barW, ay, ms(br.P99), color(br.Phase), trimFloat(roundSig(ms(br.P99))), br.Failed)
	}
	for i, v := range versions {
		text(&b, float64(plotLeft)+groupW*(float64(i)+0.5), p99Bottom+20, "middle", 13, "#000", v)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func drawBar(b *bytes.Buffer, x, w float64, ax logAxis, v float64, color, label string, failed bool) {
	y := ax.y(v)
	stroke := "none"
	if failed {
		stroke = "#c00"
	}
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" stroke="%s" stroke-width="2"/>`+"\n", x, y, w, ax.bottom-y, color, stroke)
	fill := "#000"
	if failed {
		fill = "#c00"
	}
	text(b, x+w/2, y-4, "middle", 10, fill, label)
}

// logAxis maps values onto [top, bottom] pixels by powers of ten.
type logAxis struct {
	lo, hi      float64
	top, bottom float64
}

func newLogAxis(vals []float64, top, bottom float64) logAxis {
	lo, hi := math.Inf(1), 0.0
	for _, v := range vals {
		if v > 0 {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	// Bottom on the 1-2-5 step just below the smallest value; top a little
	// above the largest, room for its label.
	p := math.Pow(10, math.Floor(math.Log10(lo)))
	for _, m := range []float64{5, 2, 1} {
		if p*m <= lo {
			lo = p * m
			break
		}
	}
	hi = math.Max(hi*1.5, lo*10)
	return logAxis{lo: lo, hi: hi, top: top, bottom: bottom}
}

func (a logAxis) y(v float64) float64 {
	if v <= a.lo {
		return a.bottom
	}
	f := (math.Log10(v) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
	return a.bottom - f*(a.bottom-a.top)
}

// draw puts grid lines at 1, 2 and 5 times each power of ten.
func (a logAxis) draw(b *bytes.Buffer, title string, label func(float64) string) {
	for p := math.Pow(10, math.Floor(math.Log10(a.lo))); p <= a.hi; p *= 10 {
		for _, m := range []float64{1, 2, 5} {
			v := p * m
			if v < a.lo*0.999 || v > a.hi {
				continue
			}
			y, stroke, size := a.y(v), "#ddd", 11
			if m != 1 {
				stroke, size = "#f0f0f0", 9
			}
			fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", plotLeft, y, plotRight, y, stroke)
			text(b, plotLeft-6, y+4, "end", size, "#333", label(v))
		}
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#000"/>`+"\n", plotLeft, a.bottom, plotRight, a.bottom)
	text(b, plotLeft, a.top-10, "start", 12, "#000", title)
}

// text writes one escaped <text> element.
func text(b *bytes.Buffer, x, y float64, anchor string, size int, fill, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d" fill="%s">`, x, y, anchor, size, fill)
	_ = xml.EscapeText(b, []byte(s))
	b.WriteString("</text>\n")
}

// si writes 1234 as 1.2k and 133274 as 133k.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return trimFloat(roundSig(v/1e6)) + "M"
	case v >= 1e3:
		return trimFloat(roundSig(v/1e3)) + "k"
	}
	return trimFloat(roundSig(v))
}

// roundSig keeps three significant digits.
func roundSig(v float64) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow(10, 2-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}

func trimFloat(v float64) string { return fmt.Sprintf("%g", v) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
