package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/internal/bytesize"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/daemon"
	"github.com/shoal-network/shoal/p2p"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

func newCmdNode(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a volunteer node",
		Long: `Give spare CPU to a training round.

A node joins a round with the invite its researcher published, trains the
work units the tracker deals it, shares its compressed updates with the
other peers, and checks and stores each agreed checkpoint.`,
	}
	cmd.AddCommand(newCmdNodeJoin(f))
	return cmd
}

// nodeJoinOptions are the arguments and flags of `shoal node join`.
type nodeJoinOptions struct {
	Invite     string
	DataDir    string
	Role       string
	CPUs       int
	MaxDisk    byteSize
	StatusAddr string
	Wait       time.Duration
	Token      string
	net        netOptions
}

func newCmdNodeJoin(f *factory) *cobra.Command {
	o := &nodeJoinOptions{}
	cmd := &cobra.Command{
		Use:   "join INVITE",
		Short: "Join a round and train for it until stopped",
		Long: `Join the round INVITE names and work for it until interrupted.

INVITE is the line 'shoal round start' prints: shoal:<round ID>@<peer
addresses>. The node fetches the round's spec from those peers (checked
against the round ID), then trains the units it is dealt. Everything it
keeps is in --data-dir: its identity (identity.key), the checkpoints it
holds, and head.json, so a restart resumes where it stopped.

Resources: --cpus caps the cores training uses; --max-memory the memory
of the network stack and of the content held in memory (and sets the Go
runtime's soft memory limit); --max-disk the checkpoints kept on disk;
--max-upload and --max-download cap the content served to and fetched
from peers, in bytes per second. On a terminal a status line shows the
step, loss, contribution, peers and traffic; otherwise it logs. With
--status-addr the node serves a status page, its status as JSON at
/api/status and Prometheus metrics at /metrics. SIGINT or SIGTERM stops it
at a safe point.`,
		Example: `  shoal node join 'shoal:bafkrei...@/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW...'
  shoal node join --cpus 2 --max-upload 1MB --status-addr 127.0.0.1:9090 "$INVITE"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Invite = args[0]
			switch {
			case o.CPUs < 0:
				return fmt.Errorf("--cpus must be positive, got %d", o.CPUs)
			case o.Role != "worker" && o.Role != "observer":
				return fmt.Errorf("--role must be worker or observer, got %q", o.Role)
			}
			return runNodeJoin(cmd.Context(), f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.DataDir, "data-dir", "shoal-node", "the node's data directory")
	fl.StringVar(&o.Role, "role", "worker", "worker (trains) or observer (follows and verifies)")
	fl.IntVar(&o.CPUs, "cpus", 0, "cores to use (default: all)")
	fl.Var(&o.MaxDisk, "max-disk", "disk the node's checkpoints may take (e.g. 2GB; 0: no cap)")
	fl.StringVar(&o.StatusAddr, "status-addr", "", "address to serve the status page and /metrics on (e.g. 127.0.0.1:9090)")
	fl.DurationVar(&o.Wait, "wait", 2*time.Minute, "how long to keep trying to reach the round's peers at start")
	fl.StringVar(&o.Token, "token", "", "access token of a closed round (from 'shoal round invite')")
	o.net.addFlags(fl)
	return cmd
}

func runNodeJoin(ctx context.Context, f *factory, o *nodeJoinOptions) error {
	inv, err := daemon.ParseInvite(o.Invite)
	if err != nil {
		return err
	}
	var token []byte
	if o.Token != "" {
		if token, err = daemon.ParseToken(o.Token); err != nil {
			return fmt.Errorf("--token: %w", err)
		}
	}
	if o.CPUs > 0 {
		runtime.GOMAXPROCS(o.CPUs)
	}
	if o.net.MaxMemory > 0 {
		debug.SetMemoryLimit(int64(o.net.MaxMemory))
	}
	if err := ensureDir(o.DataDir); err != nil {
		return err
	}
	log := slogFor(f)
	maxObjects := int64(0)
	if o.net.MaxMemory > 0 {
		maxObjects = int64(o.net.MaxMemory) / 2
	}
	store, err := openStore(o.DataDir, maxObjects)
	if err != nil {
		return err
	}
	hopts, err := o.net.hostOptions(log, store, filepath.Join(o.DataDir, "identity.key"), inv.Peers)
	if err != nil {
		return err
	}
	h, err := p2p.New(ctx, hopts)
	if err != nil {
		return err
	}
	defer h.Close()
	fmt.Fprintf(f.Err, "node %s: joining round %s\n", h.ID(), inv.Round)
	spec, err := fetchSpec(ctx, h, inv, o.Wait)
	if err != nil {
		return err
	}
	var ds *data.DatasetManifest
	if !spec.Dataset.Builtin {
		b, err := h.Blobs().FetchObject(ctx, spec.Dataset.Manifest, inviteIDs(inv))
		if err != nil {
			return fmt.Errorf("fetching the round's dataset manifest: %w", err)
		}
		if ds, err = data.DecodeDataset(b); err != nil {
			return err
		}
		budget := int64(0)
		if o.MaxDisk > 0 {
			budget = int64(o.MaxDisk) / 2 // the other half is for checkpoints
		}
		if err := store.KeepOnDisk(filepath.Join(o.DataDir, "shards"), budget); err != nil {
			return err
		}
		fmt.Fprintf(f.Err, "dataset %s: %d shards, %s; this node fetches the shards of its units\n", spec.Dataset, len(ds.Shards), bytesize.Format(float64(ds.Bytes)))
	}
	if spec.Admission == round.AdmissionClosed && token == nil {
		fmt.Fprintf(f.Err, "round %s is closed: without --token the tracker will ignore this node (ask for a token for peer %s)\n", inv.Round, h.ID())
	}
	keep := 4
	if o.MaxDisk > 0 {
		m, err := gradient.New(node.ModelConfig(spec))
		if err != nil {
			return err
		}
		size := int64(gradient.NumParams(m)) * 8 // parameters and outer momenta, float32
		fit := int64(o.MaxDisk) / size
		if fit < 2 {
			return fmt.Errorf("--max-disk %s holds %d checkpoints of this round's model (%s each); a node needs room for 2",
				bytesize.Format(float64(o.MaxDisk)), fit, bytesize.Format(float64(size)))
		}
		keep = int(min(fit-1, 4))
	}
	if err := h.Discovery().Join(inv.Round.String()); err != nil {
		return err
	}
	train, eval, _ := daemon.BuiltinData()
	if ds != nil {
		train = nil
		if o.Role == "observer" {
			if eval, err = h.Blobs().FetchObject(ctx, ds.Eval.CID, inviteIDs(inv)); err != nil {
				return fmt.Errorf("fetching the dataset's held-out text: %w", err)
			}
		}
	}
	eng, err := node.NewModelEngine(spec, train, store)
	if err != nil {
		return err
	}
	if ds != nil {
		units := spec.UnitsPerStep()
		eng.SetData(func(step uint64, unit uint32) ([]byte, error) { return store.Get(ds.ShardFor(step, unit, units).CID) })
	}
	role := wire.RoleWorker
	var evaluate func(uint64, cid.Cid) (float64, error)
	if o.Role == "observer" {
		role = wire.RoleObserver
		ev, err := daemon.Evaluator(spec, store, eval, 16)
		if err != nil {
			return err
		}
		evaluate = func(_ uint64, id cid.Cid) (float64, error) { return ev(id) }
	}
	d, err := daemon.NewNode(daemon.NodeConfig{Spec: spec, Role: role, DataDir: o.DataDir, Host: h, Store: store, Engine: eng,
		Logger: log, Evaluate: evaluate, KeepCheckpoints: keep, Token: token, Dataset: ds, DataPeers: inviteIDs(inv)})
	if err != nil {
		return err
	}
	if o.StatusAddr != "" {
		ln, err := net.Listen("tcp", o.StatusAddr)
		if err != nil {
			return fmt.Errorf("--status-addr: %w", err)
		}
		srv := &http.Server{Handler: d.StatusHandler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(f.Err, "status: http://%s/\n", ln.Addr())
	}
	fmt.Fprintf(f.Err, "round %s: %s\n", inv.Round, spec.Name)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastStep uint64
	lastLog := time.Now()
	for {
		select {
		case err := <-done:
			if f.terminal {
				fmt.Fprint(f.Err, "\r\033[K")
			}
			return err
		case <-tick.C:
			st := d.Status()
			line := fmt.Sprintf("step %d  loss %.4f  units %d (%d samples)  peers %d  in %s  out %s",
				st.Step, st.TrainLoss, st.Units, st.Samples, st.Peers, bytesize.Format(float64(st.BytesIn+st.BlobIn)), bytesize.Format(float64(st.BytesOut+st.BlobOut)))
			if f.terminal {
				fmt.Fprintf(f.Err, "\r\033[K%s", line)
			} else if st.Step != lastStep || time.Since(lastLog) > 30*time.Second {
				log.Info("status", "step", st.Step, "train_loss", st.TrainLoss, "units", st.Units, "samples", st.Samples,
					"peers", st.Peers, "bytes_in", st.BytesIn+st.BlobIn, "bytes_out", st.BytesOut+st.BlobOut)
				lastStep, lastLog = st.Step, time.Now()
			}
		}
	}
}

func inviteIDs(inv daemon.Invite) []peer.ID {
	ids := make([]peer.ID, len(inv.Peers))
	for i, ai := range inv.Peers {
		ids[i] = ai.ID
	}
	return ids
}
