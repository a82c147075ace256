package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BrowserTimeout bounds one run of the browser by DumpDOM or Screenshot
// (the context may end it sooner). Chromium's first start on a slow
// machine can take many seconds.
const BrowserTimeout = 60 * time.Second

// VirtualTimeBudget is how long, in the page's virtual time, the browser
// lets a page run its scripts and fetches before DumpDOM or Screenshot
// takes the result. Virtual time runs ahead of the clock through timers
// but stands still while a request is pending, so a page that keeps a
// request open (an event stream, a long poll) is never done: the call
// then fails when BrowserTimeout or the context ends. The dashboard's own
// page polls instead of streaming in a headless browser for this reason.
const VirtualTimeBudget = 5 * time.Second

// browserNames are the executables FindBrowser looks for, in order.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"}

// FindBrowser returns the path of a Chromium-based browser to run
// headless: $SHOAL_BROWSER if set, else the first of chromium,
// chromium-browser, google-chrome and headless_shell on PATH.
// scripts/browser.sh installs one.
func FindBrowser() (string, error) {
	if b := os.Getenv("SHOAL_BROWSER"); b != "" {
		p, err := exec.LookPath(b)
		if err != nil {
			return "", fmt.Errorf("dashboard: SHOAL_BROWSER=%s: %w", b, err)
		}
		return p, nil
	}
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("dashboard: no browser on PATH (looked for %s); run scripts/browser.sh",
		strings.Join(browserNames, ", "))
}

// DumpDOM loads url in a headless browser, lets the page run for
// VirtualTimeBudget of virtual time, and returns the DOM it then holds,
// serialised as HTML.
func DumpDOM(ctx context.Context, browser, url string) (string, error) {
	out, err := runBrowser(ctx, browser, "--dump-dom", url)
	if err != nil {
		return "", fmt.Errorf("dashboard: dump DOM of %s: %w", url, err)
	}
	return string(out), nil
}

// Screenshot loads url in a headless browser with a window of width ×
// height pixels, lets the page run for VirtualTimeBudget of virtual time,
// and writes a PNG of the window to path.
func Screenshot(ctx context.Context, browser, url, path string, width, height int) error {
	if width <= 0 || height <= 0 {
		return fmt.Errorf("dashboard: screenshot of %s: bad window size %d×%d", url, width, height)
	}
	path, err := filepath.Abs(path) // the browser's working directory is not ours to rely on
	if err != nil {
		return fmt.Errorf("dashboard: screenshot of %s: %w", url, err)
	}
	_, err = runBrowser(ctx, browser,
		"--screenshot="+path,
		"--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height),
		"--hide-scrollbars",
		url)
	if err != nil {
		return fmt.Errorf("dashboard: screenshot of %s: %w", url, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("dashboard: screenshot of %s: the browser wrote no file: %w", url, err)
	}
	if fi.Size() == 0 {
		return fmt.Errorf("dashboard: screenshot of %s: %s is empty", url, path)
	}
	return nil
}

// runBrowser runs the browser headless with a profile of its own, which
// it removes afterwards, and returns what it printed on stdout.
func runBrowser(ctx context.Context, browser string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, BrowserTimeout)
	defer cancel()
	profile, err := os.MkdirTemp("", "shoal-browser-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(profile)

	argv := append([]string{
		"--headless",
		"--no-sandbox", // it runs as root in containers and CI
		"--disable-gpu",
		"--disable-dev-shm-usage",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-extensions",
		"--disable-background-networking",
		"--disable-sync",
		"--mute-audio",
		"--user-data-dir=" + profile,
		"--virtual-time-budget=" + strconv.FormatInt(VirtualTimeBudget.Milliseconds(), 10),
	}, args...)
	cmd := exec.CommandContext(ctx, browser, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// The browser starts helper processes: run it in a process group of
	// its own and end the whole group if the context ends.
	ownProcessGroup(cmd)
	cmd.WaitDelay = 5 * time.Second

	err = cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w%s", browser, ctx.Err(), tail(stderr.Bytes()))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w%s", browser, err, tail(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// tail returns the last lines of a browser's stderr, for an error message,
// without its complaints about the missing D-Bus of a container.
func tail(b []byte) string {
	var lines []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.Contains(line, "dbus") {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	lines = lines[max(0, len(lines)-8):]
	return "\n\t" + strings.Join(lines, "\n\t")
}
