package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
)

// factory carries what every command needs from its environment.
type factory struct {
	In       io.Reader
	Out      io.Writer // requested output (data) only
	Err      io.Writer // logs, progress and errors
	log      logOptions
	logger   *zap.Logger
	terminal bool // Err is a terminal
}

type logOptions struct {
	format string
	level  string
}

// Logger returns the logger configured by the global flags.
func (f *factory) Logger() *zap.Logger {
	if f.logger == nil {
		f.logger = zap.NewNop()
	}
	return f.logger
}

func (f *factory) setupLogging() error {
	var lvl zapcore.Level
	if err := lvl.Set(f.log.level); err != nil {
		return fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", f.log.level)
	}
	var enc zapcore.Encoder
	switch f.log.format {
	case "console":
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		if f.terminal {
			cfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
		enc = zapcore.NewConsoleEncoder(cfg)
	case "json":
		enc = zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	default:
		return fmt.Errorf("--log-format: %q is not one of console, json", f.log.format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(f.Err)), lvl)
	f.logger = zap.New(core)
	// Libraries that log through log/slog (libp2p among them) write to the
	// same place.
	slog.SetDefault(slog.New(zapslog.NewHandler(core)))
	return nil
}

// run executes the command line and returns the process exit code.
func run(args []string, in io.Reader, out, errw io.Writer) int {
	f := &factory{In: in, Out: out, Err: errw}
	if file, ok := errw.(*os.File); ok {
		f.terminal = term.IsTerminal(int(file.Fd()))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if f.logger != nil {
		f.logger.Sync()
	}
	if err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(errw, "error:", err)
		}
		return 1
	}
	return 0
}

// errSilent reports failure without printing anything more.
var errSilent = errors.New("failed")

func newRootCmd(f *factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "shoal",
		Short: "Train neural networks together on volunteers' CPUs",
		Long: `shoal trains neural networks on the spare CPU of volunteers.

Everything is content-addressed and every computation is deterministic, so
peers agree on checkpoints by comparing hashes and a cheating volunteer is
caught exactly. Every flag can also be set with an environment variable
SHOAL_<FLAG>, e.g. SHOAL_LOG_FORMAT=json.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd); err != nil {
				return err
			}
			return f.setupLogging()
		},
	}
	root.SetOut(f.Out)
	root.SetErr(f.Err)
	pf := root.PersistentFlags()
	pf.StringVar(&f.log.format, "log-format", "console", "log format: console or json")
	pf.StringVar(&f.log.level, "log-level", "info", "log level: debug, info, warn or error")
	root.AddCommand(newCmdVersion(f), newCmdDemo(f, nil), newCmdTrain(f, nil), newCmdBench(f), newCmdCheckpoint(f), newCmdRound(f), newCmdNode(f), newCmdDataset(f), newCmdTokenize(f), newCmdGenerate(f))
	root.AddCommand(newCmdSim(f, nil))
	return root
}

// applyEnv sets every flag of cmd that the command line left unset from
// the environment variable SHOAL_<NAME> (upper case, '-' as '_').
func applyEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if err != nil || fl.Changed {
			return
		}
		name := "SHOAL_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if serr := cmd.Flags().Set(fl.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %v", name, v, serr)
			}
		}
	})
	return err
}
