package simulations

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strconv"
)

// A small SVG line chart: enough for a report's plots, written by hand so
// that the same data gives the same bytes.

type series struct {
	name   string
	color  string
	xs, ys []float64
	dashed bool
}

type chart struct {
	title, xlabel, ylabel string
	series                []series
	ymin0                 bool // start the y axis at 0
}

const (
	plotW, plotH                  = 720, 400
	marginL, marginR, marginT, mB = 80, 20, 40, 56
)

// niceStep returns a round tick step giving about n ticks over span.
func niceStep(span float64, n int) float64 {
	if !(span > 0) {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// axisScale returns the divisor and suffix for an axis's labels: k or M
// when its values reach ten thousand or ten million.
func axisScale(maxAbs float64) (float64, string) {
	switch {
	case maxAbs >= 1e7:
		return 1e6, "M"
	case maxAbs >= 1e4:
		return 1e3, "k"
	}
	return 1, ""
}

// tickLabel prints a tick value, divided by div, with as few digits as
// its step needs.
func tickLabel(v, step, div float64, suffix string) string {
	d := 0
	for s := step / div; s < 1 && d < 6; s *= 10 {
		d++
	}
	return strconv.FormatFloat(v/div, 'f', d, 64) + suffix
}

func (ch chart) svg() []byte {
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range ch.series {
		for i := range s.xs {
			if math.IsNaN(s.ys[i]) || math.IsInf(s.ys[i], 0) {
				continue
			}
			xmin, xmax = min(xmin, s.xs[i]), max(xmax, s.xs[i])
			ymin, ymax = min(ymin, s.ys[i]), max(ymax, s.ys[i])
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(ch.title))
	if math.IsInf(xmin, 0) {
		fmt.Fprintf(&b, `<text x="%d" y="%d">no data</text>`+"\n</svg>\n", plotW/2-30, plotH/2)
		return b.Bytes()
	}
	if ch.ymin0 && ymin > 0 {
		ymin = 0
	}
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	if ymax == ymin {
		ymin, ymax = ymin-1, ymax+1
		if ch.ymin0 && ymin < 0 {
			ymin = 0
		}
	}
	ystep := niceStep(ymax-ymin, 5)
	ymin, ymax = math.Floor(ymin/ystep)*ystep, math.Ceil(ymax/ystep)*ystep
	xstep := niceStep(xmax-xmin, 8)
	iw, ih := float64(plotW-marginL-marginR), float64(plotH-marginT-mB)
	px := func(x float64) float64 { return float64(marginL) + (x-xmin)/(xmax-xmin)*iw }
	py := func(y float64) float64 { return float64(marginT) + (1-(y-ymin)/(ymax-ymin))*ih }
	// Grid and ticks.
	ydiv, ysuf := axisScale(max(math.Abs(ymin), math.Abs(ymax)))
	xdiv, xsuf := axisScale(max(math.Abs(xmin), math.Abs(xmax)))
	for y := ymin; y <= ymax+ystep/2; y += ystep {
		fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#e5e5e5"/>`+"\n", marginL, num(py(y)), plotW-marginR, num(py(y)))
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end">%s</text>`+"\n", marginL-6, num(py(y)+4), tickLabel(y, ystep, ydiv, ysuf))
	}
	for x := math.Ceil(xmin/xstep) * xstep; x <= xmax+xstep/1e6; x += xstep {
		fmt.Fprintf(&b, `<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="#999"/>`+"\n", num(px(x)), plotH-mB, num(px(x)), plotH-mB+4)
		fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`+"\n", num(px(x)), plotH-mB+18, tickLabel(x, xstep, xdiv, xsuf))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%s" height="%s" fill="none" stroke="#999"/>`+"\n", marginL, marginT, num(iw), num(ih))
	fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`+"\n", num(float64(marginL)+iw/2), plotH-12, html.EscapeString(ch.xlabel))
	fmt.Fprintf(&b, `<text x="16" y="%s" text-anchor="middle" transform="rotate(-90 16 %s)">%s</text>`+"\n", num(float64(marginT)+ih/2), num(float64(marginT)+ih/2), html.EscapeString(ch.ylabel))
	// Series.
	for i, s := range ch.series {
		var pts bytes.Buffer
		for k := range s.xs {
			if math.IsNaN(s.ys[k]) || math.IsInf(s.ys[k], 0) {
				continue
			}
			if pts.Len() > 0 {
				pts.WriteByte(' ')
			}
			pts.WriteString(num(px(s.xs[k])) + "," + num(py(s.ys[k])))
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", s.color, dash, pts.String())
		if len(s.xs) <= 60 {
			for k := range s.xs {
				if !math.IsNaN(s.ys[k]) && !math.IsInf(s.ys[k], 0) {
					fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`+"\n", num(px(s.xs[k])), num(py(s.ys[k])), s.color)
				}
			}
		}
		ly := marginT + 14 + 16*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", plotW-marginR-190, ly-4, plotW-marginR-170, ly-4, s.color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", plotW-marginR-165, ly, html.EscapeString(s.name))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}
