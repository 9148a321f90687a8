// Command seckill serves the flash sale: the order endpoints of every
// architecture version, the admin API and the NSQ stock consumer.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-seckill/seckill/config"
	"github.com/go-seckill/seckill/internal/app"
	"github.com/go-seckill/seckill/internal/reshard"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "seckill:", err)
		os.Exit(1)
	}
}

// run starts the service and blocks until ctx ends, then shuts it down in
// order; `seckill reshard ...` runs the expansion of V7's hosts instead.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout io.Writer) error {
	if len(args) > 0 && args[0] == "reshard" {
		return runReshard(ctx, args[1:], lookupEnv, stdout)
	}
	fs := flag.NewFlagSet("seckill", flag.ContinueOnError)
	fs.SetOutput(stdout)
	configPath := fs.String("config", "", "YAML file overriding the built-in defaults (config/seckill.yaml)")
	migrateOnly := fs.Bool("migrate", false, "apply the database migrations on every MySQL host and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: seckill [-config FILE] [-migrate]\n       seckill reshard [-config FILE] [-hosts N] [-dry-run]\n\n"+
			"Serves the flash sale. Every setting of config/seckill.yaml can also be set by an\n"+
			"environment variable: %s + the key in upper case, dots as underscores\n"+
			"(http.addr -> %s).\n\n", config.EnvPrefix, config.EnvName("http.addr"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // the usage is printed; asking for it is no error
		}
		return err
	}
	cfg, err := app.LoadConfig(*configPath, lookupEnv)
	if err != nil {
		return err
	}
	log := app.NewLogger(stdout)
	app.LogRedisTo(log)
	if *migrateOnly {
		return app.Migrate(ctx, cfg, log)
	}
	a, err := app.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	return a.Serve(ctx)
}

// runReshard doubles the hosts of V7's logical databases while the
// instances keep selling, or with -dry-run prints the plan.
func runReshard(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout io.Writer) error {
	fs := flag.NewFlagSet("seckill reshard", flag.ContinueOnError)
	fs.SetOutput(stdout)
	configPath := fs.String("config", "", "YAML file overriding the built-in defaults (config/seckill.yaml)")
	hosts := fs.Int("hosts", 0, "hosts of mysql.v7_hosts in use after the expansion (1, 2, 4 or 8); 0 doubles those in use")
	dryRun := fs.Bool("dry-run", false, "print the plan and change nothing")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: seckill reshard [-config FILE] [-hosts N] [-dry-run]\n\n"+
			"Moves V7's logical databases onto the next hosts of mysql.v7_hosts, one at a time, while the\n"+
			"instances keep selling: copy, catch up, freeze, verify, switch, delete the old copy. Run it\n"+
			"again after a crash to resume. It reads the same configuration as the service.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := app.LoadConfig(*configPath, lookupEnv)
	if err != nil {
		return err
	}
	_, err = app.Reshard(ctx, cfg, reshard.Options{Hosts: *hosts, DryRun: *dryRun, CatchUps: 3}, stdout)
	return err
}
