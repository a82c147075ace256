package engine

import (
	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker/wire"
)

// What the engine's external tests reach inside the cluster for.

// Validate is the form check the cluster shares between its nodes.
func (c *Cluster) Validate(v wire.View, from string, m wire.Msg) (wire.Result, error) {
	return c.validate(v, from, m)
}

// CheckApply records an apply a node starts, as runJob does.
func (c *Cluster) CheckApply(id string, a node.ApplyJob) { c.checkApply(c.hosts[id], a) }

// ForgeHead makes a node's record say it held head as C_step.
func (c *Cluster) ForgeHead(id string, step uint64, head cid.Cid) {
	h := c.hosts[id]
	h.history[step] = head
	h.changed = true
	c.changed = append(c.changed, h)
}
