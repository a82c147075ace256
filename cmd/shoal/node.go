package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/gradient/tokenizer"
	"github.com/shoal-network/shoal/internal/bytesize"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/daemon"
	"github.com/shoal-network/shoal/node/engine"
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
	cmd.AddCommand(newCmdNodeJoin(f, nil))
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

func newCmdNodeJoin(f *factory, runF func(context.Context, *nodeJoinOptions) error) *cobra.Command {
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
--max-upload and --max-download cap what the node sends and receives,
content and gossip (relays included) alike, in bytes per second. On a terminal a status line shows the
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
			if runF != nil {
				return runF(cmd.Context(), o)
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
	hopts, err := o.net.hostOptions(log, nil, filepath.Join(o.DataDir, "identity.key"), inv.Peers)
	if err != nil {
		return err
	}
	h, store, err := daemon.NewHost(ctx, daemon.HostConfig{Dir: o.DataDir, Memory: maxObjects, Options: hopts})
	if err != nil {
		return err
	}
	defer h.Close()
	fmt.Fprintf(f.Err, "node %s: joining round %s\n", h.ID(), inv.Round)
	spec, err := fetchSpec(ctx, h, inv, o.Wait)
	if err != nil {
		return err
	}
	if spec.Admission == round.AdmissionClosed && token == nil {
		fmt.Fprintf(f.Err, "round %s is closed: without --token the tracker will ignore this node (ask for a token for peer %s)\n", inv.Round, h.ID())
	}
	if err := modelFits(spec, int64(o.net.MaxMemory)); err != nil {
		return err
	}
	ckDisk := int64(o.MaxDisk)
	if !spec.Dataset.Builtin {
		ckDisk -= max(ckDisk, 0) / 2 // the other half is for the dataset's shards
	}
	keep, err := checkpointsKept(spec, ckDisk)
	if err != nil {
		return err
	}
	if err := h.Discovery().Join(inv.Round.String()); err != nil {
		return err
	}
	train, eval, _ := daemon.BuiltinData()
	pc := daemon.PeerConfig{Spec: spec, Role: wire.RoleWorker, Dir: o.DataDir, Host: h, Store: store, Logger: log,
		Train: train, KeepCheckpoints: keep, Token: token, DataPeers: inviteIDs(inv), MaxDisk: int64(o.MaxDisk)}
	if o.Role == "observer" {
		pc.Role, pc.Eval = wire.RoleObserver, eval
	}
	if !spec.Dataset.Builtin {
		if err := joinDataset(ctx, f, h, spec, inv, &pc, int64(o.MaxDisk)); err != nil {
			return err
		}
	}
	if spec.Tokenizer.Defined() {
		if pc.Tokenizer, err = joinTokenizer(ctx, h, spec, inv); err != nil {
			return err
		}
	}
	if err := fetchInputs(ctx, f.Err, h, store, spec, inviteIDs(inv)); err != nil {
		return err
	}
	if err := teacherFits(store.Checkpoints(), spec, int64(o.net.MaxMemory)); err != nil {
		return err
	}
	d, err := daemon.NewPeer(pc)
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

	return runWithStatus(ctx, f, log, d)
}

// modelFits refuses a round whose model needs more memory to train than
// the node has (--max-memory, or else the machine's memory), before the
// node builds anything: a node that joined anyway would die out of
// memory at its first unit. Only the model's shapes are computed.
func modelFits(spec *round.Spec, maxMemory int64) error {
	cfg := engine.ModelConfig(spec)
	_, params := modelTensors(cfg)
	if params == 0 {
		return fmt.Errorf("round %s: the model's configuration is not valid", spec.ID())
	}
	limit, from := memoryLimit(maxMemory)
	if need := trainingMemory(cfg, spec.Batch); need > float64(limit) {
		return fmt.Errorf("round %s: training its model takes about %s of memory (%d parameters, batch %d), more than %s",
			spec.ID(), bytesize.Format(need), params, spec.Batch, from)
	}
	return nil
}

// teacherFits refuses a round whose model and teacher together need more
// memory than the node has: the teacher's checkpoint (fetched, in store)
// is read whole and its model built beside it, 8 bytes per parameter,
// on top of what training the round's model takes.
func teacherFits(s *checkpoint.Store, spec *round.Spec, maxMemory int64) error {
	if spec.Teacher == nil {
		return nil
	}
	id := spec.Teacher.Checkpoint
	h, err := s.Header(id)
	if err != nil {
		return fmt.Errorf("the round's teacher %s: %w", id, err)
	}
	var params int64
	for _, t := range h.Tensors {
		if !checkpoint.IsState(t.Name) {
			params += checkpoint.NumValues(t.Shape)
		}
	}
	limit, from := memoryLimit(maxMemory)
	need := trainingMemory(engine.ModelConfig(spec), spec.Batch) + 8*float64(params)
	if need > float64(limit) {
		return fmt.Errorf("round %s: training its model with its teacher (%d parameters) takes about %s of memory, more than %s",
			spec.ID(), params, bytesize.Format(need), from)
	}
	return nil
}

// checkpointsKept is how many checkpoints of the round's model a node
// keeps on disk within maxDisk bytes (0: no cap): at most node.Retention,
// at least 2 (the head and the one being made).
func checkpointsKept(spec *round.Spec, maxDisk int64) (int, error) {
	keep := node.Retention
	if maxDisk <= 0 {
		return keep, nil
	}
	_, params := modelTensors(engine.ModelConfig(spec)) // shapes only: the model is not built
	if params == 0 {
		return 0, fmt.Errorf("round %s: the model's configuration is not valid", spec.ID())
	}
	size := params * 8        // parameters and outer momenta, float32
	size += size/100 + 64<<10 // the header, manifest and index: the store refuses what goes over
	fit := maxDisk / size
	if fit < 2 {
		return 0, fmt.Errorf("--max-disk %s holds %d checkpoints of this round's model (%s each); a node needs room for 2",
			bytesize.Format(float64(maxDisk)), fit, bytesize.Format(float64(size)))
	}
	return int(min(fit-1, int64(keep))), nil
}

// joinDataset fetches the manifest of a round's dataset (and, for an
// observer, its held-out text) and sets the peer to train on its shards,
// keeping them within half of maxDisk (the other half is for
// checkpoints).
func joinDataset(ctx context.Context, f *factory, h *p2p.Host, spec *round.Spec, inv daemon.Invite, pc *daemon.PeerConfig, maxDisk int64) error {
	b, err := h.Blobs().FetchObject(ctx, spec.Dataset.Manifest, inviteIDs(inv))
	if err != nil {
		return fmt.Errorf("fetching the round's dataset manifest: %w", err)
	}
	ds, err := data.DecodeDataset(b)
	if err != nil {
		return err
	}
	pc.Dataset, pc.Train, pc.ShardBudget = ds, nil, max(maxDisk, 0)/2
	fmt.Fprintf(f.Err, "dataset %s: %d shards, %s; this node fetches the shards of its units\n", spec.Dataset, len(ds.Shards), bytesize.Format(float64(ds.Bytes)))
	if pc.Role == wire.RoleObserver {
		if pc.Eval, err = h.Blobs().FetchObject(ctx, ds.Eval.CID, inviteIDs(inv)); err != nil {
			return fmt.Errorf("fetching the dataset's held-out text: %w", err)
		}
	}
	return nil
}

// fetchInputs fetches the checkpoints the round reads but never changes
// (an adapter's base, a teacher) that the store lacks, from providers:
// each is checked against its CID chunk by chunk, and kept, pinned so
// that the collection of old heads leaves it for the node's restarts.
func fetchInputs(ctx context.Context, w io.Writer, h *p2p.Host, store *daemon.Store, spec *round.Spec, providers []peer.ID) error {
	for _, id := range spec.Inputs() {
		if !store.HasCheckpoint(id) {
			fmt.Fprintf(w, "fetching checkpoint %s, which the round reads\n", id)
			fctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
			_, err := store.FetchCheckpoint(fctx, h.Blobs(), id, providers)
			cancel()
			if err != nil {
				return fmt.Errorf("fetching checkpoint %s, which the round reads: %w", id, err)
			}
		}
		if err := store.Checkpoints().Pin(id); err != nil {
			return fmt.Errorf("checkpoint %s, which the round reads: %w", id, err)
		}
	}
	return nil
}

// joinTokenizer fetches the tokenizer a round names, by its CID, from the
// invite's peers, and checks it.
func joinTokenizer(ctx context.Context, h *p2p.Host, spec *round.Spec, inv daemon.Invite) (*tokenizer.BPE, error) {
	b, err := h.Blobs().FetchObject(ctx, spec.Tokenizer, inviteIDs(inv))
	if err != nil {
		return nil, fmt.Errorf("fetching the round's tokenizer %s: %w", spec.Tokenizer, err)
	}
	tok, err := tokenizer.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("the round's tokenizer %s: %w", spec.Tokenizer, err)
	}
	if n := tok.VocabSize(); n > spec.Model.Vocab {
		return nil, fmt.Errorf("the round's tokenizer has %d tokens, more than its model's vocabulary of %d", n, spec.Model.Vocab)
	}
	return tok, nil
}

// runWithStatus runs a node daemon until ctx ends, showing its status on
// a terminal or logging it.
func runWithStatus(ctx context.Context, f *factory, log *slog.Logger, d *daemon.Node) error {
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
			line := fmt.Sprintf("step %d  loss %.4f  units %d (%d samples, %d verified)  peers %d  in %s  out %s",
				st.Step, st.TrainLoss, st.Units, st.Samples, st.Verified, st.Peers, bytesize.Format(float64(st.GossipIn+st.BlobIn)), bytesize.Format(float64(st.GossipOut+st.BlobOut)))
			if f.terminal {
				fmt.Fprintf(f.Err, "\r\033[K%s", line)
			} else if st.Step != lastStep || time.Since(lastLog) > 30*time.Second {
				log.Info("status", "step", st.Step, "train_loss", st.TrainLoss, "units", st.Units, "samples", st.Samples, "verified", st.Verified,
					"peers", st.Peers, "bytes_in", st.GossipIn+st.BlobIn, "bytes_out", st.GossipOut+st.BlobOut)
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
