package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
