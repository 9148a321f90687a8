package stack

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
)

// StateFile is the file in the data folder that records the stack.
const StateFile = "state.json"

// Options configure Up.
type Options struct {
	// Dir is the data folder: state.json, logs/, bin/ and a folder per
	// service. Up empties it first (bin/ aside).
	Dir string
	// Root is the repository to build the service from and read deploy/
	// in; empty: the module go finds from the working directory.
	Root string
	// AdminToken is the instances' SECKILL_ADMIN_TOKEN; empty: a random one.
	AdminToken string
	// Attached processes end when this program does, however it ends (the
	// tests); otherwise they outlive it until Down (the command).
	Attached bool
	// Log receives a line per step; nil discards them.
	Log io.Writer
}

// Up builds the binaries and starts the whole stack in opts.Dir, each
// service once the ones it needs answer, and returns once nginx answers
// through both instances and Prometheus is ready. A step that fails stops
// what had started and returns the cause with the end of its log.
func Up(ctx context.Context, opts Options) (*State, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("the process stack runs on Linux only")
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	began := time.Now()
	say := func(f string, a ...any) {
		fmt.Fprintf(logw, "stack: %5.1fs "+f+"\n", append([]any{time.Since(began).Seconds()}, a...)...)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if old, err := Load(dir); err == nil && len(old.Running()) > 0 {
		return nil, fmt.Errorf("a stack runs in %s (%s): stop it first", dir, strings.Join(old.Running(), ", "))
	}
	root := opts.Root
	if root == "" {
		if root, err = moduleRoot(ctx); err != nil {
			return nil, err
		}
	}
	bins, err := findBins(filepath.Join(dir, "bin"))
	if err != nil {
		return nil, err
	}
	if err := emptyDir(dir, "bin"); err != nil {
		return nil, err
	}
	st, err := Plan(dir, root, opts.AdminToken, bins)
	if err != nil {
		return nil, err
	}
	for _, s := range st.Services {
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			return nil, err
		}
		if s.Role == RoleNSQD { // nsqd does not make its --data-path
			if err := os.MkdirAll(filepath.Join(s.Dir, "data"), 0o755); err != nil {
				return nil, err
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	if err := st.Save(); err != nil {
		return nil, err
	}
	u := &upper{st: st, attached: opts.Attached, exited: map[string]chan struct{}{}}
	fail := func(err error) (*State, error) {
		say("failed: %v; stopping what started", err)
		if derr := st.Down(logw); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}

	say("building the service and nsq into %s; initialising both MariaDB data folders", filepath.Join(dir, "bin"))
	if err := parallel(append([]func() error{func() error { return build(ctx, root, filepath.Dir(bins.Seckill)) }},
		each(st.ByRole(RoleMySQL), func(s *Service) error { return installDB(ctx, bins.InstallDB, s) })...)...); err != nil {
		return fail(err)
	}
	if err := st.writeConfigs(); err != nil {
		return fail(err)
	}
	tiers := [][]string{
		{"mysql", "mysql-shard2", "redis1", "redis2", "redis3", "nsqlookupd"},
		{"nsqd1", "nsqd2", "nsqadmin"},
		{"seckill1", "seckill2"},
		{"nginx", "prometheus"},
	}
	for i, tier := range tiers {
		say("starting %s", strings.Join(tier, ", "))
		var steps []func() error
		for _, name := range tier {
			s := st.Service(name)
			steps = append(steps, func() error { return u.startReady(ctx, s) })
		}
		if err := parallel(steps...); err != nil {
			return fail(err)
		}
		if i == 0 {
			say("joining redis1..redis3 into a cluster")
			if err := createCluster(ctx, bins.RedisCLI, st.RedisAddrs()); err != nil {
				return fail(err)
			}
		}
	}
	say("waiting for Prometheus to scrape both instances")
	if err := scraped(ctx, st.PrometheusURL(), len(st.ByRole(RoleSeckill))); err != nil {
		return fail(err)
	}
	say("up: nginx %s, prometheus %s, nsqadmin %s", st.NginxURL(), st.PrometheusURL(), st.URL("nsqadmin", PortNSQAdmin))
	return st, nil
}

// Load reads the state of the stack in dir.
func Load(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	return &st, nil
}

// Save writes the state to its folder's state.json (readable by its owner
// only: it holds the admin token).
func (st *State) Save() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.save()
}

// setProcess records s's process (0, 0: none) and saves the state.
func (st *State) setProcess(s *Service, pid int, start uint64) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	s.PID, s.StartTime = pid, start
	return st.save()
}

func (st *State) save() error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(st.Dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(st.Dir, StateFile))
}

// Running lists the services whose process runs.
func (st *State) Running() []string {
	var out []string
	for _, s := range st.Services {
		if s.Alive() {
			out = append(out, s.Name)
		}
	}
	return out
}

// Alive says the service's process runs.
func (s *Service) Alive() bool { return alive(s.PID, s.StartTime) }

// Groups lists the process groups of the services that run (each process
// leads a group of its own), for Leftovers after Down.
func (st *State) Groups() []int {
	var out []int
	for _, s := range st.Services {
		if s.Alive() {
			out = append(out, s.PID)
		}
	}
	return out
}

// Leftovers lists the processes still in the groups: none once Down has
// returned.
func Leftovers(groups []int) []int {
	var out []int
	for _, g := range groups {
		out = append(out, groupMembers(g)...)
	}
	return out
}

// stopOrder is the order Down stops the roles in: the front first, the
// stores last, so that nothing loses a dependency while it still works.
var stopOrder = [][]string{
	{RoleNginx, RolePrometheus, RoleNSQAdmin},
	{RoleSeckill},
	{RoleNSQD},
	{RoleLookupd, RoleRedis, RoleMySQL},
}

// grace is how long a role gets to end after SIGTERM before SIGKILL: an
// instance drains its requests (http.shutdown_timeout is 10 s), MariaDB
// flushes.
func grace(role string) time.Duration {
	switch role {
	case RoleSeckill:
		return 20 * time.Second
	case RoleMySQL:
		return 30 * time.Second
	}
	return 10 * time.Second
}

// Down stops every process the state names, SIGTERM first, and waits until
// no process of theirs is left; the data stays in the folder.
func (st *State) Down(log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	var errs []error
	for _, roles := range stopOrder {
		var steps []func() error
		for _, s := range st.Services {
			if slices.Contains(roles, s.Role) && s.PID > 0 {
				steps = append(steps, func() error { return st.stop(s, syscall.SIGTERM, grace(s.Role), log) })
			}
		}
		errs = append(errs, parallel(steps...))
	}
	errs = append(errs, st.Save())
	return errors.Join(errs...)
}

// Kill ends a service at once (SIGKILL to its group), as a crash would,
// and waits until its processes are gone.
func (st *State) Kill(name string) error {
	s := st.Service(name)
	if s == nil {
		return fmt.Errorf("no service %s", name)
	}
	return st.stop(s, syscall.SIGKILL, 0, io.Discard)
}

// stop sends sig to s's process group, waits up to d, then kills what is
// left of the group and waits for it. A pid that now belongs to another
// process (ours ended, the pid was reused) is left alone.
func (st *State) stop(s *Service, sig syscall.Signal, d time.Duration, log io.Writer) error {
	defer func() { _ = st.setProcess(s, 0, 0) }()
	if !s.Alive() && startTime(s.PID) != 0 {
		return nil // the pid is another process's now
	}
	members := groupMembers(s.PID)
	if len(members) == 0 {
		return nil
	}
	fmt.Fprintf(log, "stack: stopping %s (pid %d)\n", s.Name, s.PID)
	_ = signalGroup(s.PID, sig)
	if waitGone(s.PID, d) {
		return nil
	}
	if sig != syscall.SIGKILL {
		fmt.Fprintf(log, "stack: %s did not end within %v: killing it\n", s.Name, d)
	}
	_ = signalGroup(s.PID, syscall.SIGKILL)
	if waitGone(s.PID, 10*time.Second) {
		return nil
	}
	return fmt.Errorf("%s: processes %v are left after SIGKILL", s.Name, groupMembers(s.PID))
}

func waitGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if len(groupMembers(pgid)) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Status writes what runs where.
func (st *State) Status(w io.Writer) {
	fmt.Fprintf(w, "stack in %s\n", st.Dir)
	for _, s := range st.Services {
		state := "stopped"
		if s.Alive() {
			state = fmt.Sprintf("pid %d", s.PID)
		}
		var ports []string
		for _, p := range slices.Sorted(maps.Keys(s.Ports)) {
			ports = append(ports, fmt.Sprintf("%d→%s", p, s.Ports[p]))
		}
		fmt.Fprintf(w, "  %-13s %-11s %-11s %s\n", s.Name, s.Role, state, strings.Join(ports, " "))
	}
	fmt.Fprintf(w, "nginx:      %s\nprometheus: %s\nnsqadmin:   %s\nadmin token: in %s (admin_token)\nlogs:       %s\n",
		st.NginxURL(), st.PrometheusURL(), st.URL("nsqadmin", PortNSQAdmin),
		filepath.Join(st.Dir, StateFile), filepath.Join(st.Dir, "logs"))
}

// ----------------------------------------------------------------- starting

type upper struct {
	st       *State
	attached bool
	mu       sync.Mutex
	exited   map[string]chan struct{}
}

// startReady starts s and waits until it answers.
func (u *upper) startReady(ctx context.Context, s *Service) error {
	if err := u.start(s); err != nil {
		return err
	}
	timeout := 30 * time.Second
	if s.Role == RoleMySQL || s.Role == RoleSeckill {
		timeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		select {
		case <-u.exitedCh(s.Name):
			return fmt.Errorf("%s exited at start:\n%s", s.Name, tail(s.Log, 15))
		default:
		}
		if last = ready(ctx, s); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not answer within %v: %v\n%s", s.Name, timeout, last, tail(s.Log, 15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (u *upper) exitedCh(name string) chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.exited[name]
}

// start runs s's command in its folder with its output in its log.
func (u *upper) start(s *Service) error {
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(s.Bin, s.Args...)
	cmd.Dir = s.Dir
	cmd.Env = environ(s.Env)
	cmd.Stdout, cmd.Stderr = logf, logf
	setAttrs(cmd, u.attached)
	if err := spawn(cmd, u.attached); err != nil {
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	u.mu.Lock()
	u.exited[s.Name] = exited
	u.mu.Unlock()
	return u.st.setProcess(s, cmd.Process.Pid, startTime(cmd.Process.Pid))
}

// environ is this process's environment less its SECKILL_* variables,
// plus env.
func environ(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECKILL_") {
			out = append(out, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// ready says whether s answers as its clients will use it.
func ready(ctx context.Context, s *Service) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	switch s.Role {
	case RoleMySQL:
		cfg := mysql.NewConfig()
		cfg.User, cfg.Net, cfg.Addr, cfg.Timeout = "root", "tcp", s.Addr(PortMySQL), time.Second
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(cctx)
	case RoleRedis:
		c := redis.NewClient(&redis.Options{Addr: s.Addr(PortRedis), MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
		defer c.Close()
		return c.Ping(cctx).Err()
	case RoleLookupd:
		return httpOK(cctx, "http://"+s.Addr(PortLookupdHTTP)+"/ping")
	case RoleNSQD:
		return httpOK(cctx, "http://"+s.Addr(PortNSQDHTTP)+"/ping")
	case RoleNSQAdmin:
		return httpOK(cctx, "http://"+s.Addr(PortNSQAdmin)+"/ping")
	case RoleSeckill:
		return httpOK(cctx, "http://"+s.Addr(PortHTTP)+"/readyz")
	case RoleNginx:
		return httpOK(cctx, "http://"+s.Addr(PortHTTP)+"/healthz")
	case RolePrometheus:
		return httpOK(cctx, "http://"+s.Addr(PortPrometheus)+"/-/ready")
	}
	return fmt.Errorf("no readiness check for role %s", s.Role)
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// tail is the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// scraped waits until Prometheus has scraped n targets, all up.
func scraped(ctx context.Context, prometheus string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", prometheus+"/api/v1/targets?state=active", nil)
		if err != nil {
			return err
		}
		var r struct {
			Data struct {
				ActiveTargets []struct {
					ScrapeURL, Health, LastError string
				}
			}
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			err = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			up := 0
			for _, t := range r.Data.ActiveTargets {
				if t.Health == "up" {
					up++
				}
			}
			if err == nil && up == n && len(r.Data.ActiveTargets) == n {
				return nil
			}
			last = fmt.Sprintf("%+v", r.Data.ActiveTargets)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("prometheus has not scraped the %d instances: %s", n, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ------------------------------------------------------------- preparation

// findBins finds the system's programs; the built ones go into binDir.
func findBins(binDir string) (Bins, error) {
	b := Bins{
		Seckill: filepath.Join(binDir, "seckill"), NSQD: filepath.Join(binDir, "nsqd"),
		Lookupd: filepath.Join(binDir, "nsqlookupd"), NSQAdmin: filepath.Join(binDir, "nsqadmin"),
	}
	var missing []string
	find := func(dst *string, name, pkg string) {
		if p, err := exec.LookPath(name); err == nil {
			*dst = p
			return
		}
		for _, d := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
			if p := filepath.Join(d, name); isExec(p) {
				*dst = p
				return
			}
		}
		missing = append(missing, name+" ("+pkg+")")
	}
	find(&b.MariaDB, "mariadbd", "mariadb-server")
	find(&b.InstallDB, "mariadb-install-db", "mariadb-server")
	find(&b.Redis, "redis-server", "redis-server")
	find(&b.RedisCLI, "redis-cli", "redis-tools")
	find(&b.Nginx, "nginx", "nginx")
	find(&b.Prometheus, "prometheus", "prometheus")
	if len(missing) > 0 {
		return b, fmt.Errorf("not installed: %s; apt-get install the packages named", strings.Join(missing, ", "))
	}
	return b, nil
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// moduleRoot is the folder of the go.mod go finds from here.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the seckill module: run from the repository")
	}
	return filepath.Dir(gomod), nil
}

// The packages of the binaries Up builds: the service from this tree, and
// nsqd, nsqlookupd and nsqadmin at the nsq version go.mod requires (its
// tool directives).
var buildPackages = []string{".", "github.com/nsqio/nsq/apps/nsqd", "github.com/nsqio/nsq/apps/nsqlookupd", "github.com/nsqio/nsq/apps/nsqadmin"}

func build(ctx context.Context, root, binDir string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", binDir + "/"}, buildPackages...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// installDB makes a MariaDB data folder whose root enters without a
// password, as the instances' DSNs (and the tests') do. Its temporary
// files stay in the service's folder, apart from any other server's.
func installDB(ctx context.Context, bin string, s *Service) error {
	tmp := filepath.Join(s.Dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(s.Dir, "data"), "--tmpdir=" + tmp,
		"--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: mariadb-install-db: %w\n%s", s.Name, err, out.String())
	}
	return nil
}

// createCluster joins the nodes at addrs into a cluster of masters and
// waits until every node sees every slot served.
func createCluster(ctx context.Context, cli string, addrs []string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(cctx, cli, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	var last string
	for {
		healthy := true
		for _, a := range addrs {
			c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
			info, err := c.ClusterInfo(cctx).Result()
			c.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") ||
				!strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", len(addrs))) {
				healthy, last = false, fmt.Sprint(a, ": ", info, err)
				break
			}
		}
		if healthy {
			return nil
		}
		select {
		case <-cctx.Done():
			return fmt.Errorf("the cluster is not healthy: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// emptyDir removes everything in dir but keep, creating dir if needed.
func emptyDir(dir, keep string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != keep {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// parallel runs the steps at once and joins their errors.
func parallel(steps ...func() error) error {
	errs := make([]error, len(steps))
	var wg sync.WaitGroup
	for i, f := range steps {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func each(ss []*Service, f func(*Service) error) []func() error {
	var out []func() error
	for _, s := range ss {
		out = append(out, func() error { return f(s) })
	}
	return out
}
