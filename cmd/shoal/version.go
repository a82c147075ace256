package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

type versionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	Commit  string `json:"commit,omitempty"`
	Kernels string `json:"kernels"`
}

func newCmdVersion(f *factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of shoal",
		Long: `Print shoal's version, the Go toolchain and platform it was built with,
the commit when known, and the matrix kernel this machine runs (avx512,
avx2 or go). With --json the same facts as one JSON object.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := versionInfo{Version: version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, Kernels: kernelPath()}
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						v.Commit = s.Value
					}
				}
			}
			if asJSON {
				e := json.NewEncoder(f.Out)
				e.SetIndent("", "  ")
				return e.Encode(v)
			}
			fmt.Fprintf(f.Out, "shoal %s (%s %s/%s, kernels %s)\n", v.Version, v.Go, v.OS, v.Arch, v.Kernels)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
