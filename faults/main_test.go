package faults

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Binaries built once per test binary by TestMain.
var bin struct{ seckill, nsqd string }

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "seckill-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, "faults: build:", err)
		return 1
	}
	return m.Run()
}

// nsqdModule is a throw-away module that builds nsqd itself: the service's
// module has the nsqd package, not its command. go-svc is replaced as in
// nsq's own go.mod.
const nsqdModule = `module tools

go 1.26

require github.com/nsqio/nsq v1.3.0

replace github.com/judwhite/go-svc => github.com/mreiferson/go-svc v1.2.2-0.20210815184239-7a96e00010f6
`

// buildBinaries builds the service from this module and nsqd from a
// temporary module, both into dir, at the same time.
func buildBinaries(dir string) error {
	gomod, err := goCmd("", nil, "env", "GOMOD")
	if err != nil {
		return err
	}
	root := filepath.Dir(strings.TrimSpace(gomod))
	tools := filepath.Join(dir, "tools")
	if err := os.MkdirAll(tools, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tools, "go.mod"), []byte(nsqdModule), 0o644); err != nil {
		return err
	}
	bin.seckill, bin.nsqd = filepath.Join(dir, "seckill"), filepath.Join(dir, "nsqd")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, errs[0] = goCmd(root, nil, "build", "-buildvcs=false", "-o", bin.seckill, "github.com/go-seckill/seckill")
	}()
	go func() {
		defer wg.Done()
		_, errs[1] = goCmd(tools, []string{"GOFLAGS=-mod=mod", "GOWORK=off"},
			"build", "-o", bin.nsqd, "github.com/nsqio/nsq/apps/nsqd")
	}()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func goCmd(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out.String(), nil
}
