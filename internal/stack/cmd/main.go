// Command stack brings the whole deployment of docker-compose.yml up and
// down as processes on loopback (see package internal/stack):
//
//	go run ./internal/stack/cmd up      # make stack
//	go run ./internal/stack/cmd status  # make stack-status
//	go run ./internal/stack/cmd down    # make stack-down
//	go run ./internal/stack/cmd -out dashboard.svg dashboard  # make stack-dashboard
//
// -dir names the data folder (default data/stack): its state.json records
// what runs where, logs/ holds every process's output. SECKILL_ADMIN_TOKEN,
// when set, is the instances' admin token; otherwise up makes a random one
// and keeps it in state.json.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-seckill/seckill/internal/stack"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "stack:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("stack", flag.ContinueOnError)
	dir := fl.String("dir", "data/stack", "the data folder: state.json, logs/, bin/ and a folder per service")
	out := fl.String("out", "dashboard.svg", "dashboard: the SVG file to write")
	since := fl.Duration("since", 15*time.Minute, "dashboard: how far back to draw")
	fl.Usage = func() {
		fmt.Fprintln(fl.Output(), "Usage: stack [-dir DIR] [-out FILE -since D] up|down|status|dashboard")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch fl.Arg(0) {
	case "up":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		st, err := stack.Up(ctx, stack.Options{Dir: *dir, AdminToken: os.Getenv("SECKILL_ADMIN_TOKEN"), Log: os.Stderr})
		if err != nil {
			return err
		}
		st.Status(os.Stdout)
		return nil
	case "down":
		st, err := stack.Load(*dir)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Println("no stack in", *dir)
			return nil
		}
		if err != nil {
			return err
		}
		groups := st.Groups()
		if err := st.Down(os.Stderr); err != nil {
			return err
		}
		if left := stack.Leftovers(groups); len(left) > 0 {
			return fmt.Errorf("processes %v are left", left)
		}
		fmt.Println("stack down; its data and logs stay in", st.Dir)
		return nil
	case "status":
		st, err := stack.Load(*dir)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Println("no stack in", *dir)
			return nil
		}
		if err != nil {
			return err
		}
		st.Status(os.Stdout)
		return nil
	case "dashboard":
		st, err := stack.Load(*dir)
		if err != nil {
			return err
		}
		end := time.Now()
		if err := st.DrawDashboard(context.Background(), end.Add(-*since), end, *out); err != nil {
			return err
		}
		fmt.Println("wrote", *out)
		return nil
	}
	fl.Usage()
	return fmt.Errorf("unknown command %q", fl.Arg(0))
}
