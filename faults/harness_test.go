package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/go-seckill/seckill/internal/harness"
	"github.com/go-seckill/seckill/internal/testenv"
)

// ---------------------------------------------------------------- processes

// proc is a child process whose output goes to the test log.
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error       // how it ended, once done is closed
	stopped atomic.Bool // the test ended it on purpose
}

func startProc(t *testing.T, w io.Writer, name, path string, args, env []string, dir string) *proc {
	t.Helper()
	out := &lineLog{w: w, name: name, seen: map[string]int{}}
	cmd := exec.Command(path, args...)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.close()
		close(p.done)
	}()
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to go.
func (p *proc) kill() {
	p.stopped.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// term sends SIGTERM, waits up to d, then kills.
func (p *proc) term(d time.Duration) {
	p.stopped.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(d):
		p.kill()
	}
}

// lineLog writes a child's output to the test log line by line. A line
// repeated more than maxRepeats times (digits aside) is counted, not shown,
// so a fault that makes every request log does not bury the rest.
type lineLog struct {
	mu      sync.Mutex
	w       io.Writer
	name    string
	partial []byte
	seen    map[string]int
}

const maxRepeats = 5

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.line(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
}

func (l *lineLog) line(s string) {
	shape := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, s)
	shape = shape[:min(len(shape), 120)]
	l.seen[shape]++
	if n := l.seen[shape]; n <= maxRepeats {
		fmt.Fprintf(l.w, "%s| %s", l.name, s)
	} else if n == maxRepeats+1 {
		fmt.Fprintf(l.w, "%s| (more lines like this one are counted at exit)", l.name)
	}
}

func (l *lineLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.line(string(l.partial))
	}
	for shape, n := range l.seen {
		if n > maxRepeats {
			fmt.Fprintf(l.w, "%s| %d more lines like: %s", l.name, n-maxRepeats, shape)
		}
	}
}

// childEnv is the test's environment without SECKILL_* variables, so a
// developer's own settings cannot leak into the service under test.
func childEnv(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECKILL_") {
			env = append(env, kv)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// freeAddr is a loopback address with a port free right now, below the
// kernel's ephemeral range: a process restarted on it must find it free,
// and no outgoing connection is ever given a port from there.
func freeAddr(t *testing.T) string {
	t.Helper()
	low, high := 20_000, 32_768 // Linux's default ephemeral range starts at 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var lo, hi int
		if _, err := fmt.Sscan(string(b), &lo, &hi); err == nil && lo > 2_048 {
			low, high = lo/2, lo
		}
	}
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", low+rand.IntN(high-low))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// ---------------------------------------------------------------- nsqd

// nsqd is a real nsqd process. Its ports and data folder stay the same
// across restarts, so producers and consumers reconnect to it.
type nsqd struct {
	t         *testing.T
	out       io.Writer
	tcp, http string
	dir       string
	extra     []string
	p         *proc
}

func startNSQD(t *testing.T, out io.Writer, extra ...string) *nsqd {
	t.Helper()
	n := &nsqd{t: t, out: out, tcp: freeAddr(t), http: freeAddr(t), dir: t.TempDir(), extra: extra}
	n.start()
	t.Cleanup(func() {
		if !n.p.exited() {
			n.p.kill()
		}
	})
	return n
}

func (n *nsqd) start() {
	n.t.Helper()
	args := append([]string{
		"--tcp-address=" + n.tcp, "--http-address=" + n.http, "--data-path=" + n.dir,
		"--broadcast-address=127.0.0.1", "--log-level=warn",
	}, n.extra...)
	n.p = startProc(n.t, n.out, "nsqd", bin.nsqd, args, childEnv(nil), n.dir)
	if !harness.WaitFor(10*time.Second, func() bool { return n.p.exited() || httpOK("http://"+n.http+"/ping") }) || n.p.exited() {
		n.t.Fatalf("nsqd did not start on %s: %v", n.tcp, n.p.err)
	}
}

func (n *nsqd) kill() { n.p.kill() }

// killUnder SIGKILLs nsqd a second into load l, restarts it a second
// later on the same ports and says when it was back.
func (n *nsqd) killUnder(l *load) time.Time {
	time.Sleep(time.Second)
	l.setPhase("nsqd down")
	n.kill()
	time.Sleep(time.Second)
	l.setPhase("restarting")
	n.start()
	return time.Now()
}

// channel reads one channel's counters from nsqd's HTTP API.
func (n *nsqd) channel(topic, channel string) (harness.ChannelStats, error) {
	return harness.NSQDChannel(n.http, topic, channel)
}

func httpOK(url string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// ---------------------------------------------------------------- TCP proxy

// proxy forwards a loopback port to target. down closes the listener and
// every forwarded connection, so clients get "connection refused"; up
// listens on the same port again. stall holds every byte in both
// directions, as a hung server would, until resume or down (which drops
// what it held).
type proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
	upstream     map[net.Conn]bool // the connections to target, among conns
	resumed      chan struct{}     // not nil while stalled; closed on resume
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{addr: freeAddr(t), target: target, conns: map[net.Conn]bool{}, upstream: map[net.Conn]bool{}}
	if err := p.up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.down)
	return p
}

func (p *proxy) up() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
	return nil
}

func (p *proxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, s) {
		return
	}
	p.mu.Lock()
	p.upstream[s] = true
	p.mu.Unlock()
	go p.copy(s, c)
	p.copy(c, s)
}

// copy forwards src to dst, holding each chunk while the proxy is stalled.
func (p *proxy) copy(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			resumed := p.resumed
			p.mu.Unlock()
			if resumed != nil {
				<-resumed
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// track registers a forwarded pair, or closes it when the proxy went down
// while it was being set up.
func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *proxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resumed == nil {
		p.resumed = make(chan struct{})
	}
}

func (p *proxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resumed != nil {
		close(p.resumed)
		p.resumed = nil
	}
}

func (p *proxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	clear(p.upstream)
	p.mu.Unlock()
	p.resume() // held bytes meet closed connections and are dropped
}

// upstreamPorts are the local ports of the proxy's connections to its
// target: the server sees its clients there (SHOW PROCESSLIST's host).
func (p *proxy) upstreamPorts() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ports := map[string]bool{}
	for c := range p.upstream {
		if _, port, err := net.SplitHostPort(c.LocalAddr().String()); err == nil {
			ports[port] = true
		}
	}
	return ports
}

// killMySQLConns KILLs, on the scenario's MySQL server, every connection
// that came through px: the server ends their statements and closes them,
// as an operator's KILL or a server's timeout would. It returns how many.
func (e *env) killMySQLConns(px *proxy) int {
	ports := px.upstreamPorts()
	rows, err := e.DB(0).Query("SELECT ID, HOST FROM information_schema.PROCESSLIST")
	if err != nil {
		return 0
	}
	var ids []int64
	for rows.Next() {
		var id int64
		var host string
		if rows.Scan(&id, &host) == nil {
			if i := strings.LastIndexByte(host, ':'); i >= 0 && ports[host[i+1:]] {
				ids = append(ids, id)
			}
		}
	}
	rows.Close()
	n := 0
	for _, id := range ids {
		if _, err := e.DB(0).Exec(fmt.Sprintf("KILL %d", id)); err == nil {
			n++
		}
	}
	return n
}

// mysqlProxy is a proxy in front of the scenario's MySQL server.
func (e *env) mysqlProxy() *proxy {
	cfg, err := mysql.ParseDSN(e.DSNs[0])
	if err != nil {
		e.t.Fatal(err)
	}
	return startProxy(e.t, cfg.Addr)
}

// via rewrites a MySQL DSN to go through the proxy.
func (p *proxy) via(t *testing.T, dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = p.addr
	return cfg.FormatDSN()
}

// ---------------------------------------------------------------- scenario env

// env is one scenario's share of the real servers: two fresh databases
// (the primary also holds order tables; the second is another order host),
// a Redis key prefix and an nsqd process, all removed when it ends.
type env struct {
	*harness.Servers
	t    *testing.T
	out  io.Writer // the test log, open until every process has exited
	nsqd *nsqd
}

func newEnv(t *testing.T, nsqdArgs ...string) *env {
	t.Helper()
	e := &env{t: t, out: testenv.LogWriter(t)} // first, so that it is closed last
	e.Servers = harness.NewServers(t, 2)
	e.nsqd = startNSQD(t, e.out, nsqdArgs...)
	return e
}

// settings are the service's configuration for this scenario, short
// intervals so that recovery fits in a test.
func (e *env) settings() map[string]string {
	return map[string]string{
		"SECKILL_MYSQL_DSN":            e.DSNs[0],
		"SECKILL_MYSQL_SHARDS":         e.DSNs[0] + "," + e.DSNs[1],
		"SECKILL_REDIS_ADDR":           e.RedisAddr(),
		"SECKILL_REDIS_KEY_PREFIX":     e.Prefix,
		"SECKILL_NSQ_NSQD":             e.nsqd.tcp,
		"SECKILL_ADMIN_TOKEN":          harness.AdminToken,
		"SECKILL_OUTBOX_INTERVAL":      "200ms",
		"SECKILL_OUTBOX_GRACE":         "2s",
		"SECKILL_REDIS_REBUILD_GRACE":  harness.ShortRebuildGrace,
		"SECKILL_ORDER_WRITE_BUDGET":   harness.ShortWriteBudget,
		"SECKILL_ORDER_V1_TIMEOUT":     harness.ShortV1Timeout,
		"SECKILL_SOLDOUT_TTL":          "1s",
		"SECKILL_RECONCILE_INTERVAL":   "500ms",
		"SECKILL_MYSQL_MAX_OPEN_CONNS": "32",
		"SECKILL_METRICS_ADDR":         "127.0.0.1:0",
	}
}

// ---------------------------------------------------------------- service

// service is the seckill binary running as a process on a port of its own,
// kept across restarts.
type service struct {
	*harness.Client // set by launch
	t               *testing.T
	out             io.Writer
	name            string
	addr            string
	vars            map[string]string
	p               *proc
}

// service configures an instance; vars override the scenario's settings.
func (e *env) service(name string, vars map[string]string) *service {
	s := &service{t: e.t, out: e.out, name: name, addr: freeAddr(e.t), vars: e.settings()}
	s.vars["SECKILL_HTTP_ADDR"] = s.addr
	for k, v := range vars {
		s.vars[k] = v
	}
	e.t.Cleanup(func() {
		if s.p == nil {
			return
		}
		if s.p.exited() && !s.p.stopped.Load() {
			e.t.Errorf("%s exited on its own: %v", s.name, s.p.err)
		}
		if !s.p.exited() {
			s.stop()
		}
	})
	return s
}

// stop shuts the service down gracefully with SIGTERM. The client's idle
// connections go first: a connection that never carried a request holds
// http.Server.Shutdown for 5 s.
func (s *service) stop() {
	s.HTTP.CloseIdleConnections()
	s.p.term(15 * time.Second)
}

// launch starts the process without waiting for it to be ready.
func (s *service) launch() {
	s.t.Helper()
	if s.p != nil && !s.p.exited() {
		s.t.Fatalf("%s is already running", s.name)
	}
	s.Client = harness.NewClient("http://"+s.addr, harness.AdminToken)
	s.HTTP.Timeout = 10 * time.Second
	s.p = startProc(s.t, s.out, s.name, bin.seckill, nil, childEnv(s.vars), s.t.TempDir())
}

// start starts the process and waits until GET /readyz answers 200.
func (s *service) start() {
	s.t.Helper()
	s.launch()
	s.ready(30 * time.Second)
}

func (s *service) ready(d time.Duration) {
	s.t.Helper()
	if !harness.WaitFor(d, func() bool { return s.p.exited() || httpOK("http://"+s.addr+"/readyz") }) || s.p.exited() {
		s.t.Fatalf("%s not ready within %v (exited: %v %v)", s.name, d, s.p.exited(), s.p.err)
	}
}

// kill SIGKILLs the process: no shutdown, no flush.
func (s *service) kill() {
	s.p.kill()
	s.HTTP.CloseIdleConnections()
}

// ---------------------------------------------------------------- load

// order is an accepted order as its 201 told it.
type order struct {
	ID     int64 `json:"order_id,string"`
	UserID int64 `json:"user_id"`
}

// loadSpec is a bounded load: workers goroutines posting to path for at
// most dur, and at most maxRequests requests in all.
type loadSpec struct {
	path         string // "/order" (the best version) or "/orderV2" ...
	workers      int
	dur          time.Duration
	untilSoldOut bool // stop at the first 409 sold_out
}

// load posts orders of one unit, each from a new user id, as its spec says
// or until it is stopped. Answers are counted per phase, which the scenario
// moves on as it injects and removes its fault.
type load struct {
	s        *service
	goods    int64
	spec     loadSpec
	phase    atomic.Value // string
	sent     atomic.Int64
	stopping chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu           sync.Mutex
	accepted     []order
	tokens       []string       // the tokens of requests answered 202 (V13)
	refused      map[int64]bool // users answered with an error status
	unknown      map[int64]bool // users answered 503 outcome_unknown: their order may exist
	counts       map[string]int // "phase outcome": "before 201", "nsqd down 503 unavailable"
	admitted     []time.Duration
	busy         []time.Duration
	noRetryAfter int // 503s without Retry-After
}

const maxRequests = 60_000

// users hands out user ids, each to one request of the test binary.
var users atomic.Int64

func startLoad(s *service, goods int64, spec loadSpec) *load {
	l := &load{s: s, goods: goods, spec: spec, stopping: make(chan struct{}), done: make(chan struct{}),
		counts: map[string]int{}, refused: map[int64]bool{}, unknown: map[int64]bool{}}
	l.phase.Store("before")
	var wg sync.WaitGroup
	deadline := time.Now().Add(spec.dur)
	for range spec.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && l.sent.Add(1) <= maxRequests {
				select {
				case <-l.stopping:
					return
				default:
				}
				if !l.post() {
					time.Sleep(10 * time.Millisecond) // a client backing off
				}
			}
		}()
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

func (l *load) setPhase(p string) { l.phase.Store(p) }
func (l *load) stop()             { l.halt(); <-l.done }
func (l *load) halt()             { l.stopOnce.Do(func() { close(l.stopping) }) }
func (l *load) wait()             { <-l.done }

// post places one order and records the answer; false for anything but 201.
func (l *load) post() bool {
	user := users.Add(1)
	body := fmt.Sprintf(`{"user_id":%d,"goods_id":%d,"number":1}`, user, l.goods)
	phase := l.phase.Load().(string)
	start := time.Now()
	req, _ := http.NewRequest("POST", l.s.Base+l.spec.path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	// Each buyer its own address, which only an instance that trusts
	// loopback as a proxy reads (the limited versions' scenarios).
	req.Header.Set("X-Forwarded-For", harness.UserIP(user))
	resp, err := l.s.HTTP.Do(req)
	var a struct {
		order
		Token string `json:"token"`
		Error string `json:"error"`
	}
	outcome := "error"
	if err == nil {
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = json.Unmarshal(data, &a)
		outcome = fmt.Sprint(resp.StatusCode)
		if a.Error != "" {
			outcome += " " + a.Error
		}
	}
	took := time.Since(start)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[phase+" "+outcome]++
	if err != nil {
		return false
	}
	if a.Error == "sold_out" && l.spec.untilSoldOut {
		l.halt()
	}
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		l.noRetryAfter++
	}
	if a.Error == "busy" {
		l.busy = append(l.busy, took)
	} else {
		l.admitted = append(l.admitted, took)
	}
	if resp.StatusCode == http.StatusCreated {
		a.UserID = user
		l.accepted = append(l.accepted, a.order)
		return true
	}
	if resp.StatusCode == http.StatusAccepted && a.Token != "" {
		l.tokens = append(l.tokens, a.Token)
		return true
	}
	if a.Error == "outcome_unknown" {
		l.unknown[user] = true
	} else {
		l.refused[user] = true
	}
	return false
}

// storedUnknown counts the orders of s whose request was answered 503
// outcome_unknown: the client was told the order may exist.
func (l *load) storedUnknown(s harness.Snapshot) int { return l.storedOf(s, l.unknown) }

// count sums the answers whose "phase outcome" starts with prefix.
func (l *load) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k, v := range l.counts {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// storedRefused counts the orders of s whose request was answered with an
// error other than outcome_unknown: the client was told no order was made.
func (l *load) storedRefused(s harness.Snapshot) int { return l.storedOf(s, l.refused) }

// storedOf counts the orders of s placed by the users in set.
func (l *load) storedOf(s harness.Snapshot, set map[int64]bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, u := range s.Users {
		if set[u] {
			n++
		}
	}
	return n
}

func (l *load) orders() []order {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.accepted)
}

func (l *load) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(l.counts)) {
		fmt.Fprintf(&b, "%s=%d ", k, l.counts[k])
	}
	return b.String()
}

// percentile of ds, 0 < p <= 100.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}

// ---------------------------------------------------------------- invariants

// settle waits until the goods is settled (within settleWithin) and checks
// the sale's invariants on MySQL and Redis directly: orders may be stored
// that no client was told of (a kill, a cut connection), and no dead letter
// is expected.
func (e *env) settle(goods, initial int64, accepted []order) harness.Snapshot {
	e.t.Helper()
	ids := make([]int64, len(accepted))
	for i, o := range accepted {
		ids[i] = o.ID
	}
	return e.CheckInvariants(e.t, goods, harness.Sale{Initial: initial, Accepted: ids, AllowUnanswered: true, Within: settleWithin})
}

// ---------------------------------------------------------------- table

// result is one scenario's line in the table.
type result struct {
	num      string
	name     string
	accepted int
	recovery time.Duration // from the fault's end to settled; 0: not measured
	held     bool
	note     string
}

func table(counted string, rs []result) string {
	var b strings.Builder
	b.WriteString("| # | scenario | " + counted + " | recovery | invariants held | notes |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, r := range rs {
		rec := "—"
		if r.recovery > 0 {
			rec = fmt.Sprintf("%.1f s", r.recovery.Seconds())
		}
		held := "no"
		if r.held {
			held = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s |\n", r.num, r.name, r.accepted, rec, held, r.note)
	}
	return b.String()
}
