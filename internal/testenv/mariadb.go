package testenv

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The MariaDB programs a test starts servers of its own with.
const (
	mariadbd        = "/usr/sbin/mariadbd"
	mariadbInstall  = "/usr/bin/mariadb-install-db"
	maxOwnServers   = 4
	serverStartWait = 30 * time.Second
)

// ownServers bounds the servers alive at once across the tests of a
// process: each takes about 100 MiB and a share of two cores.
var ownServers = make(chan struct{}, maxOwnServers)

// StartMariaDB starts a MariaDB server of the test's own, on a free
// loopback port with a fresh data directory, and stops it when the test
// ends. It returns its DSN with no database selected, as MySQLServer does.
// The server is small (32 MiB of buffer pool), takes connections from
// loopback only, checks no passwords and syncs its log once a second: a
// host for tests of several servers, not a model of production. Without
// the MariaDB programs the test skips, and fails under CI=true.
func StartMariaDB(tb testing.TB) string {
	tb.Helper()
	for _, prog := range []string{mariadbd, mariadbInstall} {
		if _, err := os.Stat(prog); err != nil {
			unavailable(tb, prog, err, "apt-get install mariadb-server")
		}
	}
	ownServers <- struct{}{}
	released := false
	release := func() {
		if !released {
			released = true
			<-ownServers
		}
	}
	// The socket path must stay short (108 bytes): not under tb.TempDir.
	dir, err := os.MkdirTemp("", "mdb")
	if err != nil {
		release()
		tb.Fatal(err)
	}
	small := []string{"--innodb-buffer-pool-size=32M", "--innodb-log-file-size=8M"}
	install := exec.Command(mariadbInstall, append([]string{"--no-defaults", "--auth-root-authentication-method=normal",
		"--datadir=" + filepath.Join(dir, "data"), "--skip-test-db", "--skip-name-resolve"}, small...)...)
	if out, err := install.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		release()
		tb.Fatalf("mariadb-install-db: %v\n%s", err, lastLines(out))
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		release()
		tb.Fatal(err)
	}
	args := append([]string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"), fmt.Sprintf("--port=%d", port),
		"--bind-address=127.0.0.1", "--socket=" + filepath.Join(dir, "sock"), "--pid-file=" + filepath.Join(dir, "pid"),
		"--log-error=" + filepath.Join(dir, "error.log"), "--skip-grant-tables", "--skip-log-bin",
		"--innodb-flush-log-at-trx-commit=2", "--max-connections=300"}, small...)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root") // mariadbd refuses root unless told
	}
	cmd := exec.Command(mariadbd, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		release()
		tb.Fatalf("start mariadbd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		os.RemoveAll(dir)
		release()
	})
	dsn := fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port)
	deadline := time.Now().Add(serverStartWait)
	for {
		db, err := sql.Open("mysql", dsn)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err = db.PingContext(ctx)
			cancel()
			db.Close()
		}
		if err == nil {
			return dsn
		}
		select {
		case werr := <-exited:
			exited <- werr
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			tb.Fatalf("mariadbd on port %d exited: %v\n%s", port, werr, lastLines(log))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mariadbd on port %d does not answer after %v: %v", port, serverStartWait, err)
		}
	}
}

// DatabaseOn names a database that does not exist yet on the server at
// serverDSN (as StartMariaDB returns) and returns its DSN; the server's
// end removes it.
func DatabaseOn(serverDSN string) string {
	return serverDSN + Name("seckill_test_") + "?parseTime=true"
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return bytes.Join(lines[max(0, len(lines)-20):], []byte("\n"))
}
