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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "seckill:", err)
		os.Exit(1)
	}
}

// run starts the service and blocks until ctx ends, then shuts it down in order.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout io.Writer) error {
	fs := flag.NewFlagSet("seckill", flag.ContinueOnError)
	fs.SetOutput(stdout)
	configPath := fs.String("config", "", "YAML file overriding the built-in defaults (config/seckill.yaml)")
	migrateOnly := fs.Bool("migrate", false, "apply the database migrations on every MySQL host and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: seckill [-config FILE] [-migrate]\n\n"+
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
