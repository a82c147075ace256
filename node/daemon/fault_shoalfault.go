//go:build shoalfault

package daemon

import (
	"fmt"
	"os"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/engine"
)

// FaultInjection reports whether this build can inject faults.
const FaultInjection = true

// faulty wraps the engine as SHOAL_FAULT says, for end-to-end tests of
// verification. This file is compiled only with the shoalfault build tag.
//
//	SHOAL_FAULT=corrupt-updates   every update is of a perturbed pseudo-gradient
func faulty(e node.Engine) node.Engine {
	switch os.Getenv("SHOAL_FAULT") {
	case "":
		return e
	case "corrupt-updates":
		me, ok := e.(*engine.ModelEngine)
		if !ok {
			panic("SHOAL_FAULT needs the model engine")
		}
		return &corrupting{me}
	default:
		panic(fmt.Sprintf("unknown SHOAL_FAULT %q", os.Getenv("SHOAL_FAULT")))
	}
}

type corrupting struct{ *engine.ModelEngine }

func (c *corrupting) Run(j node.Job) node.Result {
	tj, ok := j.(node.TrainJob)
	if !ok {
		return c.ModelEngine.Run(j)
	}
	delta, loss, err := c.Delta(tj.Base, tj.Step, tj.Unit)
	if err != nil {
		return node.Result{Job: j, Err: err}
	}
	for i := range delta {
		delta[i] = -3 * delta[i]
	}
	u, err := c.Encode(delta, loss)
	return node.Result{Job: j, Update: u, Err: err}
}
