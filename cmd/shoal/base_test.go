package main

import (
	"strings"
	"testing"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/internal/testround"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/node/engine/enginetest"
)

// TestCheckBase: a fine-tuning round's base must be in the tracker's
// store and hold the round's model.
func TestCheckBase(t *testing.T) {
	spec := testround.Spec(2)
	mem := enginetest.NewMemStore()
	e, err := engine.NewModelEngine(spec, nil, mem)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := e.Genesis()
	c, _ := mem.Checkpoint(g)
	s, err := checkpoint.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	spec.InitCheckpoint = g
	if err := checkBase(s, spec, "DIR"); err == nil || !strings.Contains(err.Error(), "shoal checkpoint import") {
		t.Fatalf("a missing base: %v", err)
	}
	if _, err := s.Put(c); err != nil {
		t.Fatal(err)
	}
	if err := checkBase(s, spec, "DIR"); err != nil {
		t.Fatal(err)
	}
	other := *spec
	other.Model.Hidden = 32
	if err := checkBase(s, &other, "DIR"); err == nil || !strings.Contains(err.Error(), "does not hold the round's model") {
		t.Fatalf("a base of another model: %v", err)
	}
}
