package aggregate

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Rule aggregates contributions into one update.
type Rule interface {
	// Name returns the rule's canonical spec, with every parameter
	// explicit: Parse(r.Name()) returns an equivalent rule.
	Name() string
	// Aggregate writes the aggregate of cs, taken in the given order, to
	// dst, whose length every contribution must have and which must not
	// overlap any of them. It does not modify cs. On error dst is left
	// unchanged.
	Aggregate(dst []float32, cs []Contribution) (Report, error)
}

// Report says what a rule did with each contribution. Per-contribution
// slices are indexed in input order; lists of peers are in input order.
type Report struct {
	Rule string // the rule's Name
	// Norms holds each contribution's L2 norm; for an excluded one it is
	// the non-finite sum of squares that excluded it (NaN or +Inf).
	Norms []float64
	// Excluded lists the peers whose contributions held NaN or ±Inf and
	// were left out.
	Excluded []string
	// Clipped lists the peers whose contributions were scaled down
	// (norm-clip) or clipped in the last iteration (centered-clip).
	Clipped []string
	// Scales holds the factor each contribution was scaled by (norm-clip)
	// or its clip factor in the last iteration (centered-clip): 1 if not
	// clipped, 0 if excluded. It is nil for the other rules.
	Scales []float64
	// Bound is the norm bound (norm-clip) or the last iteration's radius τ
	// (centered-clip); 0 for the other rules.
	Bound float64
}

// Parse returns the rule a spec names. A spec is a rule name, optionally
// followed by a colon and comma-separated key=value parameters:
//
//	mean
//	median
//	trimmed-mean:trim=0.2         trim in [0, 0.5); default 0.1
//	norm-clip:max=1.0             max > 0, or max=median (the default)
//	centered-clip:tau=1.0,iters=3 tau > 0 or tau=median (the default);
//	                              iters in [1, 100], default 3
//
// Spaces around names, keys and values are ignored; numbers are parsed by
// strconv.ParseFloat and strconv.Atoi.
func Parse(spec string) (Rule, error) {
	name, rest, hasParams := strings.Cut(spec, ":")
	name = strings.TrimSpace(name)
	kv := map[string]string{}
	var keys []string // in spec order, so errors do not depend on map order
	if hasParams {
		for _, part := range strings.Split(rest, ",") {
			k, v, ok := strings.Cut(part, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || k == "" || v == "" {
				return nil, fmt.Errorf("aggregate: rule %q: parameter %q is not key=value", spec, part)
			}
			if _, dup := kv[k]; dup {
				return nil, fmt.Errorf("aggregate: rule %q: parameter %q given twice", spec, k)
			}
			kv[k] = v
			keys = append(keys, k)
		}
	}
	p := params{spec: spec, kv: kv}
	var r Rule
	switch name {
	case "mean":
		r = Mean{}
	case "median":
		r = Median{}
	case "trimmed-mean":
		t := TrimmedMean{Trim: 0.1}
		p.float("trim", &t.Trim, false)
		if p.err == nil && !(t.Trim >= 0 && t.Trim < 0.5) {
			p.err = fmt.Errorf("aggregate: rule %q: trim must be in [0, 0.5)", spec)
		}
		r = t
	case "norm-clip":
		c := NormClip{}
		p.float("max", &c.Max, true)
		r = c
	case "centered-clip":
		c := CenteredClip{}
		p.float("tau", &c.Tau, true)
		p.int("iters", &c.Iters)
		if p.err == nil && c.Iters == 0 {
			c.Iters = DefaultIters
		}
		r = c
	default:
		return nil, fmt.Errorf("aggregate: unknown rule %q (want mean, median, trimmed-mean, norm-clip or centered-clip)", name)
	}
	if p.err == nil {
		for _, k := range keys {
			if !p.used[k] {
				p.err = fmt.Errorf("aggregate: rule %q: unknown parameter %q", spec, k)
				break
			}
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return r, nil
}

// params reads a spec's parameters, keeping the first error.
type params struct {
	spec string
	kv   map[string]string
	used map[string]bool
	err  error
}

func (p *params) get(key string) (string, bool) {
	v, ok := p.kv[key]
	if ok {
		if p.used == nil {
			p.used = map[string]bool{}
		}
		p.used[key] = true
	}
	return v, ok && p.err == nil
}

// float reads a positive finite number (or "median" when median is true,
// which leaves *dst at 0) into *dst; a trim may also be 0.
func (p *params) float(key string, dst *float64, median bool) {
	v, ok := p.get(key)
	if !ok {
		return
	}
	if median && v == "median" {
		*dst = 0
		return
	}
	f, err := strconv.ParseFloat(v, 64)
	switch {
	case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
		p.err = fmt.Errorf("aggregate: rule %q: %s=%q is not a finite number", p.spec, key, v)
	case median && !(f > 0):
		p.err = fmt.Errorf("aggregate: rule %q: %s must be positive or median, got %s", p.spec, key, v)
	default:
		*dst = f
	}
}

func (p *params) int(key string, dst *int) {
	v, ok := p.get(key)
	if !ok {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxIters {
		p.err = fmt.Errorf("aggregate: rule %q: %s=%q is not an integer in [1, %d]", p.spec, key, v, maxIters)
		return
	}
	*dst = n
}

// formatFloat formats f in the shortest form that parses back to f.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
