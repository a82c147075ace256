// Package bytesize reads and writes byte counts for people: the one
// format the command line, the simulator's reports and the status output
// show sizes in, and the one parser for sizes in flags and files.
//
// It imports nothing but the standard library, so every layer may use it.
package bytesize

import (
	"fmt"
	"strconv"
	"strings"
)

// Format writes a byte count in binary units: "512 B", "64.0 KiB",
// "3.5 MiB", "1.25 GiB" (a tenth below a gibibyte, a hundredth from one
// up).
func Format(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// Rate writes a bandwidth given in bytes per second as megabits per
// second, the unit links are sold in ("unlimited" for 0 or less).
func Rate(bytesPerSecond float64) string {
	if bytesPerSecond <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.1f Mbit/s", bytesPerSecond*8/1e6)
}

// Parse reads a byte count: a number with an optional unit, binary (KiB,
// MiB, GiB, TiB) or decimal (B, kB, KB, MB, GB, TB, and K, M, G, T).
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1e3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"B", 1}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*mult > 1<<62 {
		return 0, fmt.Errorf("%q is not a size in bytes (examples: 1500, 64kB, 4MiB, 1GB)", s)
	}
	return int64(v * mult), nil
}
