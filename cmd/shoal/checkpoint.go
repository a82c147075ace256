package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/internal/bytesize"
)

// checkpointOptions are the flags every `shoal checkpoint` command shares.
type checkpointOptions struct {
	Store string
}

// storeDir returns the store directory: --store, else
// $SHOAL_HOME/checkpoints, else ~/.shoal/checkpoints.
func (o *checkpointOptions) storeDir() (string, error) {
	if o.Store != "" {
		return o.Store, nil
	}
	if h := os.Getenv("SHOAL_HOME"); h != "" {
		return filepath.Join(h, "checkpoints"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("--store: no home directory to put the default store in: %v", err)
	}
	return filepath.Join(home, ".shoal", "checkpoints"), nil
}

// open opens the store; unless create is true it must exist already.
func (o *checkpointOptions) open(create bool) (*checkpoint.Store, error) {
	dir, err := o.storeDir()
	if err != nil {
		return nil, err
	}
	if !create {
		if _, err := os.Stat(filepath.Join(dir, "manifests")); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no checkpoint store in %s (see --store)", dir)
		}
	}
	return checkpoint.OpenStore(dir)
}

func newCmdCheckpoint(f *factory) *cobra.Command {
	o := &checkpointOptions{}
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "List, inspect, verify, export and import stored checkpoints",
		Long: `Work with the local checkpoint store.

A checkpoint is a model's parameters and the outer optimizer's state, in a
canonical encoding cut into 1 MiB chunks; its ID is the CID of the manifest
listing the chunks' CIDs, so every peer that computes the same state names it
the same way. The store keeps chunks and manifests as files named by CID and
checks every file against its name when reading it. Labels (such as head)
name checkpoints; pinned ones survive garbage collection.

CID|label arguments take a checkpoint's CID or one of its labels.`,
	}
	cmd.PersistentFlags().StringVar(&o.Store, "store", "", "checkpoint store directory (default $SHOAL_HOME/checkpoints, or ~/.shoal/checkpoints)")
	cmd.AddCommand(
		newCmdCheckpointLs(f, o, nil),
		newCmdCheckpointShow(f, o, nil),
		newCmdCheckpointVerify(f, o, nil),
		newCmdCheckpointExport(f, o, nil),
		newCmdCheckpointImport(f, o, nil),
		newCmdCheckpointMerge(f, o, nil),
		newCmdCheckpointMergeAdapter(f, o),
		newCmdCheckpointQuantize(f, o),
		newCmdCheckpointLabel(f, o, nil),
		newCmdCheckpointPin(f, o, true, nil),
		newCmdCheckpointPin(f, o, false, nil),
		newCmdCheckpointGC(f, o, nil),
	)
	return cmd
}

// getRef reads the checkpoint a CID or label names from s; errors name
// the reference.
func getRef(s *checkpoint.Store, ref string) (cid.Cid, *checkpoint.Checkpoint, error) {
	id, err := s.Resolve(ref)
	if err != nil {
		return cid.Undef, nil, err
	}
	c, err := s.Get(id)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("%s: %w", ref, err)
	}
	return id, c, nil
}

// putLabelled stores c and, if label is not empty, gives it that label.
func putLabelled(s *checkpoint.Store, c *checkpoint.Checkpoint, label string) (cid.Cid, error) {
	id, err := s.Put(c)
	if err != nil {
		return cid.Undef, err
	}
	if label != "" {
		if err := s.SetLabel(label, id); err != nil {
			return cid.Undef, err
		}
	}
	return id, nil
}

// checkLabel checks a --label flag (empty: none).
func checkLabel(label string) error {
	if label == "" {
		return nil
	}
	if err := checkpoint.ValidLabel(label); err != nil {
		return fmt.Errorf("--label: %v", err)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

// ---- ls

type checkpointLsOptions struct {
	*checkpointOptions
	JSON bool
}

// checkpointEntry is one checkpoint of `ls --json` and `show --json`
// (stable JSON).
type checkpointEntry struct {
	ID        string                  `json:"id"`
	Size      int64                   `json:"size"`
	Chunks    int                     `json:"chunks"`
	ChunkSize int                     `json:"chunk_size,omitempty"`
	Step      *int64                  `json:"step,omitempty"`
	Labels    []string                `json:"labels"`
	Pinned    bool                    `json:"pinned"`
	Meta      map[string]string       `json:"meta"`
	Params    int64                   `json:"params"`
	Tensors   []checkpoint.TensorSpec `json:"tensors,omitempty"`
	ChunkIDs  []string                `json:"chunk_cids,omitempty"` // show --chunks: the chunks in order
}

func newEntry(id cid.Cid, size int64, chunks int, meta map[string]string, tensors []checkpoint.TensorSpec, labels []string, pinned bool) checkpointEntry {
	e := checkpointEntry{ID: id.String(), Size: size, Chunks: chunks, Labels: labels, Pinned: pinned, Meta: meta}
	if e.Labels == nil {
		e.Labels = []string{}
	}
	if n, ok := (&checkpoint.Info{Meta: meta}).Step(); ok {
		e.Step = &n
	}
	for _, t := range tensors {
		if !checkpoint.IsState(t.Name) {
			e.Params += checkpoint.NumValues(t.Shape)
		}
	}
	return e
}

func newCmdCheckpointLs(f *factory, co *checkpointOptions, runF func(*checkpointLsOptions) error) *cobra.Command {
	o := &checkpointLsOptions{checkpointOptions: co}
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the complete checkpoints of the store, oldest first",
		Long: `List the checkpoints whose manifest and every chunk are present and intact,
oldest first, with their labels, size, step and whether they are pinned. A
download in progress or a damaged checkpoint is not listed (see verify).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(o)
			}
			return runCheckpointLs(f, o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the list as JSON")
	return cmd
}

func runCheckpointLs(f *factory, o *checkpointLsOptions) error {
	s, err := o.open(false)
	if err != nil {
		return err
	}
	infos, err := s.List()
	if err != nil {
		return err
	}
	entries := make([]checkpointEntry, 0, len(infos))
	for _, in := range infos {
		entries = append(entries, newEntry(in.ID, in.Size, in.Chunks, in.Meta, in.Tensors, in.Labels, in.Pinned))
	}
	if o.JSON {
		return writeJSON(f.Out, entries)
	}
	if len(entries) == 0 {
		fmt.Fprintf(f.Err, "no checkpoints in %s\n", s.Dir())
		return nil
	}
	tw := tabwriter.NewWriter(f.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CID\tSTEP\tPARAMS\tSIZE\tLABELS\tPINNED")
	for _, e := range entries {
		step := "-"
		if e.Step != nil {
			step = fmt.Sprint(*e.Step)
		}
		pinned := ""
		if e.Pinned {
			pinned = "pinned"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", e.ID, step, e.Params, bytesize.Format(float64(e.Size)), strings.Join(e.Labels, ","), pinned)
	}
	return tw.Flush()
}

// ---- show

type checkpointShowOptions struct {
	*checkpointOptions
	Ref    string
	JSON   bool
	Chunks bool
}

func newCmdCheckpointShow(f *factory, co *checkpointOptions, runF func(*checkpointShowOptions) error) *cobra.Command {
	o := &checkpointShowOptions{checkpointOptions: co}
	cmd := &cobra.Command{
		Use:   "show CID|label",
		Short: "Show a checkpoint's metadata and tensors",
		Long: `Show a checkpoint's metadata (round, step, model configuration) and its
tensors with their shapes, model parameters and optimizer state apart. The
checkpoint is named by its CID or by a label; the header is read and
verified without loading the tensor data. --chunks lists the chunks (index,
offset, length, CID) that peers fetch and check one by one.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			o.Ref = args[0]
			if runF != nil {
				return runF(o)
			}
			return runCheckpointShow(f, o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print as JSON")
	cmd.Flags().BoolVar(&o.Chunks, "chunks", false, "list the CIDs of the chunks, in order")
	return cmd
}

func runCheckpointShow(f *factory, o *checkpointShowOptions) error {
	s, err := o.open(false)
	if err != nil {
		return err
	}
	id, err := s.Resolve(o.Ref)
	if err != nil {
		return err
	}
	m, err := s.Manifest(id)
	if err != nil {
		return err
	}
	h, err := s.Header(id)
	if err != nil {
		return err
	}
	labels, err := s.Labels()
	if err != nil {
		return err
	}
	var ls []string
	for l, c := range labels {
		if c == id {
			ls = append(ls, l)
		}
	}
	slices.Sort(ls)
	pins, err := s.Pins()
	if err != nil {
		return err
	}
	e := newEntry(id, m.Size, len(m.Chunks), h.Meta, h.Tensors, ls, slices.Contains(pins, id))
	e.ChunkSize = m.ChunkSize
	e.Tensors = h.Tensors
	if o.Chunks {
		for _, c := range m.Chunks {
			e.ChunkIDs = append(e.ChunkIDs, c.String())
		}
	}
	if o.JSON {
		return writeJSON(f.Out, e)
	}
	w := f.Out
	fmt.Fprintf(w, "checkpoint %s\n", e.ID)
	fmt.Fprintf(w, "size       %s (%d bytes) in %d chunks of %s\n", bytesize.Format(float64(e.Size)), e.Size, e.Chunks, bytesize.Format(float64(e.ChunkSize)))
	fmt.Fprintf(w, "labels     %s\n", strings.Join(e.Labels, ", "))
	fmt.Fprintf(w, "pinned     %v\n", e.Pinned)
	fmt.Fprintf(w, "parameters %d\n", e.Params)
	fmt.Fprintln(w, "metadata:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	keys := make([]string, 0, len(e.Meta))
	for k := range e.Meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(tw, "  %s\t%s\n", k, e.Meta[k])
	}
	tw.Flush()
	fmt.Fprintf(w, "tensors (%d):\n", len(e.Tensors))
	for _, t := range e.Tensors {
		fmt.Fprintf(tw, "  %s\t%v\t%d\n", t.Name, t.Shape, checkpoint.NumValues(t.Shape))
	}
	if err := tw.Flush(); err != nil || !o.Chunks {
		return err
	}
	fmt.Fprintf(w, "chunks (%d):\n", len(e.ChunkIDs))
	for i, c := range e.ChunkIDs {
		fmt.Fprintf(tw, "  %d\t%d\t%d\t%s\n", i, m.ChunkOffset(i), m.ChunkLen(i), c)
	}
	return tw.Flush()
}

// ---- verify

type checkpointVerifyOptions struct {
	*checkpointOptions
	Ref  string
	JSON bool
}

type verifyResult struct {
	Checkpoints int            `json:"checkpoints"`
	Chunks      int            `json:"chunks"`
	Bytes       int64          `json:"bytes"`
	Damaged     []damageResult `json:"damaged"`
}

type damageResult struct {
	Kind       string `json:"kind"`
	ID         string `json:"id"`
	Checkpoint string `json:"checkpoint,omitempty"`
	Path       string `json:"path"`
	Error      string `json:"error"`
}

func newCmdCheckpointVerify(f *factory, co *checkpointOptions, runF func(*checkpointVerifyOptions) error) *cobra.Command {
	o := &checkpointVerifyOptions{checkpointOptions: co}
	cmd := &cobra.Command{
		Use:   "verify [CID|label]",
		Short: "Re-hash the store's files and report damage",
		Long: `Re-hash every manifest and chunk of the store (or of one checkpoint) and
check it against its CID. Each damaged or missing object is printed; the
command fails if there is any. A download in progress shows as missing
chunks. Putting the checkpoint again, or fetching it, repairs it.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Ref = args[0]
			}
			if runF != nil {
				return runF(o)
			}
			return runCheckpointVerify(f, o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the report as JSON")
	return cmd
}

func runCheckpointVerify(f *factory, o *checkpointVerifyOptions) error {
	s, err := o.open(false)
	if err != nil {
		return err
	}
	var ids []cid.Cid
	if o.Ref != "" {
		id, err := s.Resolve(o.Ref)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	r, err := s.Verify(ids...)
	if err != nil {
		return err
	}
	res := verifyResult{Checkpoints: r.Checkpoints, Chunks: r.Chunks, Bytes: r.Bytes, Damaged: []damageResult{}}
	for _, d := range r.Damaged {
		dr := damageResult{Kind: string(d.Kind), ID: d.ID.String(), Path: d.Path, Error: d.Err.Error()}
		if d.Checkpoint.Defined() {
			dr.Checkpoint = d.Checkpoint.String()
		}
		res.Damaged = append(res.Damaged, dr)
	}
	if o.JSON {
		if err := writeJSON(f.Out, res); err != nil {
			return err
		}
	} else {
		for _, d := range r.Damaged {
			fmt.Fprintln(f.Out, d)
		}
		status := "ok"
		if !r.OK() {
			status = fmt.Sprintf("%d problems", len(r.Damaged))
		}
		fmt.Fprintf(f.Out, "checked %d checkpoints, %d chunks, %s: %s\n", r.Checkpoints, r.Chunks, bytesize.Format(float64(r.Bytes)), status)
	}
	if !r.OK() {
		return fmt.Errorf("store %s: %d damaged or missing objects", s.Dir(), len(r.Damaged))
	}
	return nil
}

// ---- label, pin, unpin, gc

type checkpointLabelOptions struct {
	*checkpointOptions
	Label  string
	Ref    string
	Remove bool
}

func newCmdCheckpointLabel(f *factory, co *checkpointOptions, runF func(*checkpointLabelOptions) error) *cobra.Command {
	o := &checkpointLabelOptions{checkpointOptions: co}
	cmd := &cobra.Command{
		Use:   "label LABEL [CID|label]",
		Short: "Name a checkpoint with a label, or remove a label with --remove",
		Long: `Give a checkpoint a label, a name the other checkpoint commands accept in
place of its CID (a volunteer node keeps the label "head" on the checkpoint
it holds). A label names one checkpoint at a time: labelling another moves
it. With --remove the label is deleted.`,
		Args: func(_ *cobra.Command, args []string) error {
			if o.Remove && len(args) != 1 {
				return errors.New("label --remove takes the label alone")
			}
			if !o.Remove && len(args) != 2 {
				return errors.New("label takes a label and the checkpoint it names")
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			o.Label = args[0]
			if len(args) == 2 {
				o.Ref = args[1]
			}
			if !o.Remove {
				if err := checkpoint.ValidLabel(o.Label); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(o)
			}
			s, err := o.open(false)
			if err != nil {
				return err
			}
			if o.Remove {
				return s.RemoveLabel(o.Label)
			}
			id, err := s.Resolve(o.Ref)
			if err != nil {
				return err
			}
			return s.SetLabel(o.Label, id)
		},
	}
	cmd.Flags().BoolVar(&o.Remove, "remove", false, "remove the label")
	return cmd
}

type checkpointPinOptions struct {
	*checkpointOptions
	Ref string
	Pin bool
}

func newCmdCheckpointPin(f *factory, co *checkpointOptions, pin bool, runF func(*checkpointPinOptions) error) *cobra.Command {
	o := &checkpointPinOptions{checkpointOptions: co, Pin: pin}
	use, short := "pin CID|label", "Protect a checkpoint from garbage collection"
	long := `Protect a checkpoint from 'shoal checkpoint gc', which otherwise keeps only
the most recent ones. A pinned checkpoint stays until it is unpinned. The
checkpoint is named by its CID or by a label.`
	if !pin {
		use, short = "unpin CID|label", "Remove a checkpoint's protection from garbage collection"
		long = `Remove the protection 'shoal checkpoint pin' gave a checkpoint, so that
'shoal checkpoint gc' may collect it once it is no longer among the most
recent. The checkpoint is named by its CID or by a label.`
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			o.Ref = args[0]
			if runF != nil {
				return runF(o)
			}
			s, err := o.open(false)
			if err != nil {
				return err
			}
			id, err := s.Resolve(o.Ref)
			if err != nil {
				return err
			}
			if o.Pin {
				return s.Pin(id)
			}
			return s.Unpin(id)
		},
	}
}

type checkpointGCOptions struct {
	*checkpointOptions
	Keep int
	JSON bool
}

type gcResult struct {
	Removed []string `json:"removed"`
	Chunks  int      `json:"chunks"`
	Bytes   int64    `json:"bytes"`
}

func newCmdCheckpointGC(f *factory, co *checkpointOptions, runF func(*checkpointGCOptions) error) *cobra.Command {
	o := &checkpointGCOptions{checkpointOptions: co}
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove all but the newest checkpoints and the pinned ones",
		Long: `Remove every checkpoint but the --keep newest complete ones, the pinned ones
and downloads in progress, then every chunk no remaining checkpoint uses.
Labels of removed checkpoints are removed.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.Keep < 0 {
				return fmt.Errorf("--keep must not be negative, got %d", o.Keep)
			}
			if runF != nil {
				return runF(o)
			}
			s, err := o.open(false)
			if err != nil {
				return err
			}
			r, err := s.GC(o.Keep)
			if err != nil {
				return err
			}
			res := gcResult{Removed: []string{}, Chunks: r.Chunks, Bytes: r.Bytes}
			for _, id := range r.Removed {
				res.Removed = append(res.Removed, id.String())
			}
			if o.JSON {
				return writeJSON(f.Out, res)
			}
			fmt.Fprintf(f.Out, "removed %d checkpoints and %d chunks, %s freed\n", len(res.Removed), res.Chunks, bytesize.Format(float64(res.Bytes)))
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Keep, "keep", 5, "newest complete checkpoints to keep")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the result as JSON")
	return cmd
}
