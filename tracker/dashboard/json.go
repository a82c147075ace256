package dashboard

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// marshal encodes s as the dashboard sends it: as encoding/json would,
// except that nil lists are empty lists and numbers JSON cannot carry are
// dealt with as the package doc says. s is not modified.
func (s Snapshot) marshal() ([]byte, error) {
	b, err := json.Marshal(s.forJSON())
	if err != nil {
		return nil, fmt.Errorf("dashboard: encode snapshot of step %d: %w", s.Step, err)
	}
	return b, nil
}

// forJSON returns a copy of s that encodes without error and with lists,
// never nulls, where the page expects lists.
func (s Snapshot) forJSON() Snapshot {
	s.Floor = finite(s.Floor)
	s.Target = finite(s.Target)
	s.Throughput = Throughput{
		SamplesPerSec:  finite(s.Throughput.SamplesPerSec),
		BytesInPerSec:  finite(s.Throughput.BytesInPerSec),
		BytesOutPerSec: finite(s.Throughput.BytesOutPerSec),
		StepSeconds:    finite(s.Throughput.StepSeconds),
	}

	var dropped []Event
	loss := make([]LossPoint, 0, len(s.Loss))
	for _, p := range s.Loss {
		if !isFinite(p.Train) {
			dropped = append(dropped, Event{
				At:     s.Now,
				Kind:   "dashboard",
				Step:   p.Step,
				Detail: fmt.Sprintf("step %d: training loss is %v; not plotted", p.Step, p.Train),
			})
			continue
		}
		p.Eval = finite(p.Eval)
		loss = append(loss, p)
	}
	s.Loss = loss

	s.Steps = nonNil(s.Steps)
	s.Peers = nonNil(s.Peers)
	s.Events = append(slices.Clip(nonNil(s.Events)), dropped...)
	return s
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func finite(x float64) float64 {
	if isFinite(x) {
		return x
	}
	return 0
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
