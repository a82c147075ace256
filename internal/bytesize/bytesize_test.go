package bytesize

import "testing"

func TestFormat(t *testing.T) {
	for b, want := range map[float64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		5 << 20: "5.0 MiB", 1 << 30: "1.00 GiB", 3.5 * (1 << 30): "3.50 GiB"} {
		if got := Format(b); got != want {
			t.Errorf("Format(%g) = %q, want %q", b, got, want)
		}
	}
	for r, want := range map[float64]string{0: "unlimited", -1: "unlimited", 1e6 / 8: "1.0 Mbit/s", 2.5e6: "20.0 Mbit/s"} {
		if got := Rate(r); got != want {
			t.Errorf("Rate(%g) = %q, want %q", r, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "64KiB": 64 << 10, "4 MiB": 4 << 20, "1GB": 1e9, "1.5KB": 1500,
		"1500": 1500, "64kB": 64000, "2MB": 2e6, "1GiB": 1 << 30, "512MiB": 512 << 20, "0": 0, "1.5M": 1.5e6} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1XB", "lots", "1e30GB"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
