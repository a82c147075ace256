package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-network/shoal/gradient/tokenizer"
)

type tokenizeOptions struct {
	Vocab, Merges string
	Decode, JSON  bool
	Text          string
	HasText       bool
}

func newCmdTokenize(f *factory) *cobra.Command {
	o := &tokenizeOptions{}
	cmd := &cobra.Command{
		Use:   "tokenize [TEXT]",
		Short: "Print the token IDs of a text (or, with --decode, the text of token IDs)",
		Long: `Print the token IDs of TEXT (or of stdin): byte-level by default (one token
per byte, the zoo's vocabulary of 256), or GPT-2's byte-level BPE with
--vocab encoder.json --merges vocab.bpe (GPT-2's standard vocabulary files).
The tokenizer's ID, the CID of its canonical encoding, goes to stderr.
--decode reads token IDs (space-separated) and prints their text.`,
		Example: `  shoal tokenize "Hello world"
  shoal tokenize --vocab encoder.json --merges vocab.bpe "Hello world"
  echo 15496 995 | shoal tokenize --vocab encoder.json --merges vocab.bpe --decode`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if (o.Vocab == "") != (o.Merges == "") {
				return fmt.Errorf("--vocab and --merges go together")
			}
			if len(args) == 1 {
				o.Text, o.HasText = args[0], true
			}
			return runTokenize(f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Vocab, "vocab", "", "GPT-2's encoder.json")
	fl.StringVar(&o.Merges, "merges", "", "GPT-2's vocab.bpe")
	fl.BoolVar(&o.Decode, "decode", false, "read token IDs and print their text")
	fl.BoolVar(&o.JSON, "json", false, "print the IDs as a JSON array")
	return cmd
}

// codec is what tokenize needs of a tokenizer.
type textCodec interface {
	Encode([]byte) []int32
	Decode([]int32) ([]byte, error)
}

// byteCodec is the byte-level tokenizer.
type byteCodec struct{}

func (byteCodec) Encode(b []byte) []int32 {
	out := make([]int32, len(b))
	for i, c := range b {
		out[i] = int32(c)
	}
	return out
}

func (byteCodec) Decode(ids []int32) ([]byte, error) {
	out := make([]byte, len(ids))
	for i, id := range ids {
		if id < 0 || id > 255 {
			return nil, fmt.Errorf("token %d (at %d) is not a byte", id, i)
		}
		out[i] = byte(id)
	}
	return out, nil
}

func runTokenize(f *factory, o *tokenizeOptions) error {
	var tk textCodec = byteCodec{}
	if o.Vocab != "" {
		ef, err := os.Open(o.Vocab)
		if err != nil {
			return fmt.Errorf("--vocab: %w", err)
		}
		defer ef.Close()
		mf, err := os.Open(o.Merges)
		if err != nil {
			return fmt.Errorf("--merges: %w", err)
		}
		defer mf.Close()
		bpe, err := tokenizer.Load(ef, mf)
		if err != nil {
			return err
		}
		fmt.Fprintf(f.Err, "tokenizer %s (GPT-2 BPE, %d tokens; a round spec names it as tokenizer: %s)\n", bpe.ID(), bpe.VocabSize(), bpe.ID())
		tk = bpe
	}
	in := []byte(o.Text)
	if !o.HasText {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<30))
		if err != nil {
			return err
		}
		in = b
	}
	if o.Decode {
		var ids []int32
		for i, s := range strings.Fields(string(in)) {
			n, err := strconv.ParseInt(strings.Trim(s, "[],"), 10, 32)
			if err != nil {
				return fmt.Errorf("token %d: %q is not an integer", i, s)
			}
			ids = append(ids, int32(n))
		}
		text, err := tk.Decode(ids)
		if err != nil {
			return err
		}
		_, err = f.Out.Write(text)
		return err
	}
	ids := tk.Encode(in)
	if o.JSON {
		if ids == nil {
			ids = []int32{}
		}
		return json.NewEncoder(f.Out).Encode(ids)
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(int(id))
	}
	_, err := fmt.Fprintln(f.Out, strings.Join(parts, " "))
	return err
}
