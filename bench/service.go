package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/store"
)

// adminPassTimeout bounds a reconciliation pass the bench asks for (POST
// /admin/reconcile): the scale phases time one over thousands of goods,
// which outlasts any order's answer. The service may take that long to
// answer (http.write_timeout) and the bench waits as long.
const adminPassTimeout = 30 * time.Minute

// service is one seckill process the harness built and started, and a
// client of its HTTP API.
type service struct {
	*harness.Client
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

// stats is GET /admin/goods/:id/stats.
type stats struct {
	RedisStock  *int64 `json:"redis_stock"`
	MySQLStock  int64  `json:"mysql_stock"`
	MySQLSale   int64  `json:"mysql_sale"`
	Orders      int64  `json:"orders"`
	StockLogs   int64  `json:"stock_logs"`
	DeadLetters int64  `json:"dead_letters"`
}

// drained says the consumer has nothing left to do for the goods: every
// order has its stock log and both stores show the same stock.
func (s stats) drained() bool {
	return s.StockLogs == s.Orders && s.RedisStock != nil && *s.RedisStock == s.MySQLStock
}

// buildService compiles the module's main package into dir.
func buildService(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "seckill")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// resetDatabase drops and recreates the bench database, so every run
// starts from empty tables and goods ids from 1.
func resetDatabase(ctx context.Context, serverDSN, name string) error {
	if err := store.CheckDatabaseName(name); err != nil {
		return err
	}
	db, err := sql.Open("mysql", serverDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range []string{"DROP DATABASE IF EXISTS `" + name + "`", "CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// databaseDSN is serverDSN with the database selected.
func databaseDSN(serverDSN, name string, interpolate bool) (string, error) {
	cfg, err := mysql.ParseDSN(serverDSN)
	if err != nil {
		return "", err
	}
	cfg.DBName = name
	cfg.ParseTime = true
	cfg.InterpolateParams = interpolate
	return cfg.FormatDSN(), nil
}

// clearRedisPrefix deletes the keys a previous run left under prefix: the
// database starts again at goods 1, and goods_1 must not carry old stock.
func clearRedisPrefix(ctx context.Context, addr, prefix string) error {
	if prefix == "" {
		return errors.New("refusing to clear an empty Redis key prefix")
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := c.Del(ctx, iter.Val()).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}

// freeAddr picks a free loopback port for the service.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startService runs bin in dir with env, logging to dir/service.log, and
// waits until GET /readyz answers 200. The free port picked for it can be
// taken before the service binds it (by its own embedded nsqd's ports,
// picked by the kernel meanwhile): a start that failed so is tried again
// on another port.
func startService(ctx context.Context, bin, dir string, env map[string]string) (*service, error) {
	for try := 1; ; try++ {
		s, err := startServiceOnce(ctx, bin, dir, env)
		if err == nil || try == 3 || !strings.Contains(err.Error(), "address already in use") {
			return s, err
		}
	}
}

func startServiceOnce(ctx context.Context, bin, dir string, env map[string]string) (*service, error) {
	token := randomHex(16)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env["SECKILL_ADMIN_TOKEN"] = token
	env["SECKILL_HTTP_ADDR"] = addr
	logPath := filepath.Join(dir, "service.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Inherited SECKILL_* settings would point the service elsewhere: keep
	// only the harness's own.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECKILL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	s := &service{Client: harness.NewClient("http://"+addr, token), cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	s.HTTP.Timeout = 10 * time.Second
	go func() { _ = cmd.Wait(); logFile.Close(); close(s.exited) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _, err := s.Send(ctx, "GET", "/readyz", nil); err == nil && code == http.StatusOK {
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("service exited during start-up:\n%s", s.logTail(30))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("service not ready after 60s:\n%s", s.logTail(30))
		}
	}
}

// stop asks for the graceful shutdown (SIGINT) and kills after 30 s.
func (s *service) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// logTail is the end of the service's log, for error messages.
func (s *service) logTail(lines int) string {
	b, _ := os.ReadFile(s.logPath)
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

var (
	reLogMsg = regexp.MustCompile(`level=(WARN|ERROR) msg=("(?:[^"\\]|\\.)*"|\S+)(.*)`)
	reLogErr = regexp.MustCompile(`\berr=("(?:[^"\\]|\\.)*"|\S+)`)
)

// logProblems counts the service's WARN and ERROR lines by level and message.
func (s *service) logProblems() []logCount {
	b, _ := os.ReadFile(s.logPath)
	return countLogProblems(string(b))
}

// logCount is how often the service logged one message at one level.
type logCount struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	N     int    `json:"count"`
	Err   string `json:"first_err,omitempty"` // the err= of its first line
}

func countLogProblems(log string) []logCount {
	var out []logCount
	for _, m := range reLogMsg.FindAllStringSubmatch(log, -1) {
		msg := strings.Trim(m[2], `"`)
		i := slices.IndexFunc(out, func(c logCount) bool { return c.Level == m[1] && c.Msg == msg })
		if i < 0 {
			out = append(out, logCount{Level: m[1], Msg: msg})
			i = len(out) - 1
			if e := reLogErr.FindStringSubmatch(m[3]); e != nil {
				out[i].Err = strings.Trim(e[1], `"`)
			}
		}
		out[i].N++
	}
	slices.SortStableFunc(out, func(a, b logCount) int { return b.N - a.N })
	return out
}

// getJSON calls the service and decodes a want-status answer into v.
func (s *service) getJSON(ctx context.Context, method, path string, body any, want int, v any) error {
	code, b, err := s.Send(ctx, method, path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if code != want {
		return fmt.Errorf("%s %s answered %d, want %d: %s", method, path, code, want, b)
	}
	return json.Unmarshal(b, v)
}

// versions asks GET /healthz which order versions the service serves.
func (s *service) versions(ctx context.Context) (list []string, best string, err error) {
	var h struct {
		Versions []string `json:"versions"`
		Order    string   `json:"order"`
	}
	if err := s.getJSON(ctx, "GET", "/healthz", nil, http.StatusOK, &h); err != nil {
		return nil, "", err
	}
	if len(h.Versions) == 0 {
		return nil, "", errors.New("GET /healthz lists no versions")
	}
	return h.Versions, h.Order, nil
}

func (s *service) createGoods(ctx context.Context, name string, stock, perUserLimit int64) (int64, error) {
	var g struct {
		ID int64 `json:"id"`
	}
	err := s.getJSON(ctx, "POST", "/admin/goods", map[string]any{"name": name, "stock": stock, "per_user_limit": perUserLimit}, http.StatusCreated, &g)
	if err == nil && g.ID < 1 {
		err = errors.New("POST /admin/goods returned no id")
	}
	return g.ID, err
}

func (s *service) stats(ctx context.Context, id int64) (stats, error) {
	var st stats
	err := s.getJSON(ctx, "GET", fmt.Sprintf("/admin/goods/%d/stats", id), nil, http.StatusOK, &st)
	return st, err
}

var reNSQDHTTP = regexp.MustCompile(`msg="embedded nsqd started".* http=(\S+)`)

// pauseConsumer pauses or resumes the consumer's channel on the service's
// embedded nsqd, whose HTTP address the service logs at start-up.
func (s *service) pauseConsumer(topic, channel string, pause bool) error {
	addr, err := s.nsqdHTTPAddr()
	if err != nil {
		return err
	}
	return harness.PauseChannel(addr, topic, channel, pause)
}

// nsqdHTTPAddr is the HTTP address of the service's embedded nsqd, which
// it logs at start-up.
func (s *service) nsqdHTTPAddr() (string, error) {
	b, _ := os.ReadFile(s.logPath)
	m := reNSQDHTTP.FindSubmatch(b)
	if m == nil {
		return "", errors.New("the service's log does not give its embedded nsqd's HTTP address")
	}
	addr := string(m[1])
	return addr, requireLoopback("http://" + addr)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
