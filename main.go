// Command seckill serves the flash sale: the order endpoints of every
// architecture version, the admin API and the NSQ stock consumer.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

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
	if err := fs.Parse(args); err != nil {
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
