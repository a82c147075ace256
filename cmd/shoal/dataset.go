package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/internal/bytesize"
)

func newCmdDataset(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dataset",
		Short: "Cut a text corpus into a content-addressed dataset for a round",
	}
	var asJSON bool
	cid := &cobra.Command{
		Use:   "cid PATH",
		Short: "Print the dataset ID a text corpus makes, to name it in a round spec",
		Long: fmt.Sprintf(`Cut the text at PATH (a file, or a directory whose text files are read
in order, binary files skipped) into a dataset and print its ID: the CID of
its manifest, which a round spec names under dataset:. The cut depends
only on the text: the last %g%% (at least %d KiB) is held out for
evaluation, the rest cut into shards of about %d MiB at line starts, each
named by its CID. 'shoal round start --data PATH' serves the shards;
volunteers fetch the ones their work units need.`, 100*data.DatasetEvalFraction, data.DatasetMinEval>>10, data.DatasetShardSize>>20),
		Example: `  shoal dataset cid ./corpus
  shoal dataset cid --json "$(go env GOROOT)/src"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			corpus, err := data.LoadText(args[0])
			if err != nil {
				return err
			}
			ds, err := data.BuildDataset(corpus.Bytes)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			m := ds.Manifest
			if asJSON {
				return json.NewEncoder(f.Out).Encode(struct {
					ID       string                `json:"id"`
					Manifest *data.DatasetManifest `json:"manifest"`
				}{m.ID().String(), m})
			}
			fmt.Fprintf(f.Err, "%s: %d text files (%d binary skipped), %s: %d shards and %s held out\n",
				args[0], corpus.Files, corpus.Skipped, bytesize.Format(float64(m.Bytes)), len(m.Shards), bytesize.Format(float64(m.Eval.Size)))
			fmt.Fprintln(f.Out, m.ID())
			return nil
		},
	}
	cid.Flags().BoolVar(&asJSON, "json", false, "print the ID and the manifest as JSON")
	cmd.AddCommand(cid)
	return cmd
}
