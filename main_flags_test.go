package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/go-seckill/seckill/internal/harness"
)

// -h and -help print the usage and succeed (exit status 0): asking for help
// is no error. An unknown flag still is one.
func TestHelpFlagPrintsUsageAndSucceeds(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	for _, arg := range []string{"-h", "-help", "--help"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{arg}, noEnv, &out); err != nil {
			t.Errorf("run %s: %v, want nil", arg, err)
		}
		for _, want := range []string{"Usage", "-config", "-migrate", "SECKILL_"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("run %s: usage %q does not mention %s", arg, out.String(), want)
			}
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-no-such-flag"}, noEnv, &out); err == nil {
		t.Error("an unknown flag was accepted")
	}
}

// seckill reshard -dry-run prints the plan of a doubling and changes
// nothing: no logical database gets a row in the map.
func TestReshardDryRunPrintsThePlan(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	e.LogicalHosts(t, 1, true)
	e.Start(t)
	lookup := func(k string) (string, bool) { v, ok := e.Settings[k]; return v, ok }
	var out bytes.Buffer
	if err := run(context.Background(), []string{"reshard", "-dry-run"}, lookup, &out); err != nil {
		t.Fatalf("reshard -dry-run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"onto 2 hosts", "4 to move", "l1 moves", "l2 stays"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the plan does not say %q:\n%s", want, out.String())
		}
	}
	var n int
	if err := e.DB(0).QueryRow("SELECT COUNT(*) FROM shard_map").Scan(&n); err != nil || n != 0 {
		t.Errorf("the dry run wrote %d map rows (%v)", n, err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"reshard", "-h"}, lookup, &out); err != nil || !strings.Contains(out.String(), "-dry-run") {
		t.Errorf("reshard -h: %v\n%s", err, out.String())
	}
}
