// Package stack runs the deployment docker-compose.yml describes, as
// processes on loopback, for machines without a Docker engine: nginx (the
// system's) in front of two instances of the service built from this tree,
// nsqlookupd, two nsqd and nsqadmin (built from the nsq module this one
// requires), a Redis Cluster of three masters, two MariaDB servers (the
// primary and the second order host) and Prometheus (the system's) scraping
// both instances with deploy/prometheus's rules. Each process keeps the
// name of its compose service, and the instances get the same SECKILL_*
// variables as there, with loopback addresses for the service names.
//
// Up starts it all in a data folder and records what runs where in
// state.json there; Down stops every process that file names and waits
// until none is left. The command (internal/stack/cmd, `make stack`) and
// the tests share this implementation.
package stack

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Roles of the services.
const (
	RoleMySQL      = "mysql"
	RoleRedis      = "redis"
	RoleLookupd    = "nsqlookupd"
	RoleNSQD       = "nsqd"
	RoleNSQAdmin   = "nsqadmin"
	RoleSeckill    = "seckill"
	RoleNginx      = "nginx"
	RolePrometheus = "prometheus"
)

// The ports the compose services listen on inside their network. A
// service's Ports map these to the loopback addresses that stand in for
// them here.
const (
	PortMySQL       = 3306
	PortRedis       = 6379
	PortRedisBus    = 16379 // the cluster bus: the port + 10000
	PortLookupdTCP  = 4160
	PortLookupdHTTP = 4161
	PortNSQDTCP     = 4150
	PortNSQDHTTP    = 4151
	PortNSQAdmin    = 4171
	PortHTTP        = 8080 // the instances' and nginx's
	PortMetrics     = 9100
	PortPrometheus  = 9090
)

// Database is the database the instances use on both MariaDB servers, as
// in docker-compose.yml's DSNs.
const Database = "seckill"

// ClusterInit is the compose service that joins the Redis nodes into a
// cluster and exits; here Up does that step itself.
const ClusterInit = "redis-cluster"

// LoopbackNetwork is where the stack's processes, nginx among them, run:
// the instances trust it as their proxy, as compose's trust its network.
const LoopbackNetwork = "127.0.0.0/8"

// ComposeOnly are the compose services the stack does not run, and why.
var ComposeOnly = map[string]string{
	"grafana": "Debian has no grafana package; its dashboard is drawn from the stack's Prometheus by package dashboard (stack dashboard), and checked by deploy_test.go",
}

// RedisFlags are the redis-server settings of every cluster node, the same
// as docker-compose.yml's redis1..redis3 commands: a master that dies is
// seen failing in 5 s, and the others keep serving their own slots
// meanwhile rather than refusing every key for a few uncovered ones.
var RedisFlags = []string{
	"--cluster-enabled", "yes",
	"--appendonly", "yes",
	"--cluster-node-timeout", "5000",
	"--cluster-require-full-coverage", "no",
}

// MySQLFlags are the server settings both MariaDB servers share with
// docker-compose.yml's MySQL services.
var MySQLFlags = []string{"--max-connections=1000"}

// Service is one process of the stack, named as docker-compose.yml names
// its service.
type Service struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Ports maps each port the compose service listens on to the loopback
	// address that stands in for it.
	Ports map[int]string `json:"ports"`
	Bin   string         `json:"bin"`
	Args  []string       `json:"args"`
	// Env is what the process gets besides the environment of Up, less
	// any SECKILL_* variable of it: the instances' configuration.
	Env map[string]string `json:"env,omitempty"`
	Dir string            `json:"dir"` // its working folder, its data within
	Log string            `json:"log"` // its standard output and error

	// Set once started: the process (a session leader, its group's id is
	// its pid) and its start time in clock ticks since boot, which tells
	// it from a later process given the same pid.
	PID       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
}

// Addr is the loopback address standing in for the compose port.
func (s *Service) Addr(port int) string { return s.Ports[port] }

// State is the stack as planned and started: every service, in the order
// Up starts them, and where its data and logs live.
type State struct {
	Dir        string     `json:"dir"`
	Root       string     `json:"root"` // the repository the service was built from
	AdminToken string     `json:"admin_token"`
	Services   []*Service `json:"services"`

	mu sync.Mutex // over the services' processes and state.json
}

// Service is the service called name, or nil.
func (st *State) Service(name string) *Service {
	for _, s := range st.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// ByRole lists the services of role, in order.
func (st *State) ByRole(role string) []*Service {
	var out []*Service
	for _, s := range st.Services {
		if s.Role == role {
			out = append(out, s)
		}
	}
	return out
}

// URL is http:// and the address standing in for a service's port.
func (st *State) URL(name string, port int) string {
	if s := st.Service(name); s != nil {
		return "http://" + s.Addr(port)
	}
	return ""
}

// NginxURL is where clients reach the instances.
func (st *State) NginxURL() string { return st.URL("nginx", PortHTTP) }

// PrometheusURL is Prometheus's web address.
func (st *State) PrometheusURL() string { return st.URL("prometheus", PortPrometheus) }

// DSNs are the instances' databases, the primary first, as the invariant
// checks read them.
func (st *State) DSNs() []string {
	var out []string
	for _, s := range st.ByRole(RoleMySQL) {
		out = append(out, dsn(s.Addr(PortMySQL)))
	}
	return out
}

// RedisAddrs are the cluster's masters.
func (st *State) RedisAddrs() []string {
	var out []string
	for _, s := range st.ByRole(RoleRedis) {
		out = append(out, s.Addr(PortRedis))
	}
	return out
}

// Translate maps a compose address, "service:port", or ":port" of the
// service self, to the loopback address standing in for it.
func (st *State) Translate(hostport, self string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	if host == "" {
		host = self
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("%s: %w", hostport, err)
	}
	s := st.Service(host)
	if s == nil || s.Addr(p) == "" {
		return "", fmt.Errorf("%s: no service %s with port %d in the stack", hostport, host, p)
	}
	return s.Addr(p), nil
}

func dsn(addr string) string { return "root@tcp(" + addr + ")/" + Database + "?parseTime=true" }

// Bins are the programs the stack runs: those built from this tree and
// the nsq module into the data folder's bin, and the system's.
type Bins struct {
	Seckill, NSQD, Lookupd, NSQAdmin string
	MariaDB, InstallDB, Redis        string
	RedisCLI, Nginx, Prometheus      string
}

// Plan lays out the stack in dir: a free loopback port for every port of
// every service (outside the range the kernel hands out for port 0, which
// the tests use), every command line and the instances' variables. It
// starts nothing.
func Plan(dir, root, adminToken string, bins Bins) (*State, error) {
	if adminToken == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		adminToken = hex.EncodeToString(b)
	}
	st := &State{Dir: dir, Root: root, AdminToken: adminToken}
	ports, err := newPortPicker()
	if err != nil {
		return nil, err
	}
	add := func(name, role, bin string, ports map[int]string) *Service {
		s := &Service{Name: name, Role: role, Bin: bin, Ports: ports,
			Dir: filepath.Join(dir, name), Log: filepath.Join(dir, "logs", name+".log")}
		st.Services = append(st.Services, s)
		return s
	}
	var errs []error
	pick := func() string {
		a, err := ports.pick()
		errs = append(errs, err)
		return a
	}

	for _, name := range []string{"mysql", "mysql-shard2"} {
		s := add(name, RoleMySQL, bins.MariaDB, map[int]string{PortMySQL: pick()})
		data := filepath.Join(s.Dir, "data")
		_, port, _ := net.SplitHostPort(s.Addr(PortMySQL))
		s.Args = []string{"--no-defaults", "--datadir=" + data, "--tmpdir=" + filepath.Join(s.Dir, "tmp"), "--port=" + port, "--bind-address=127.0.0.1",
			"--socket=" + filepath.Join(s.Dir, "mysqld.sock"), "--pid-file=" + filepath.Join(s.Dir, "mariadbd.pid"),
			"--log-error=" + filepath.Join(s.Dir, "error.log"), "--innodb-buffer-pool-size=64M"}
		s.Args = append(s.Args, MySQLFlags...)
		if os.Geteuid() == 0 {
			s.Args = append(s.Args, "--user=root")
		}
	}
	for i := 1; i <= 3; i++ {
		s := add("redis"+strconv.Itoa(i), RoleRedis, bins.Redis, map[int]string{PortRedis: pick(), PortRedisBus: pick()})
		_, port, _ := net.SplitHostPort(s.Addr(PortRedis))
		_, bus, _ := net.SplitHostPort(s.Addr(PortRedisBus))
		s.Args = append([]string{"--port", port, "--cluster-port", bus, "--bind", "127.0.0.1", "--dir", s.Dir,
			"--cluster-config-file", "nodes.conf", "--logfile", "", "--save", "", "--daemonize", "no"}, RedisFlags...)
	}
	lookupd := add("nsqlookupd", RoleLookupd, bins.Lookupd, map[int]string{PortLookupdTCP: pick(), PortLookupdHTTP: pick()})
	lookupd.Args = []string{"--tcp-address=" + lookupd.Addr(PortLookupdTCP), "--http-address=" + lookupd.Addr(PortLookupdHTTP),
		"--broadcast-address=127.0.0.1"}
	for _, name := range []string{"nsqd1", "nsqd2"} {
		s := add(name, RoleNSQD, bins.NSQD, map[int]string{PortNSQDTCP: pick(), PortNSQDHTTP: pick()})
		s.Args = []string{"--tcp-address=" + s.Addr(PortNSQDTCP), "--http-address=" + s.Addr(PortNSQDHTTP),
			"--lookupd-tcp-address=" + lookupd.Addr(PortLookupdTCP), "--broadcast-address=127.0.0.1",
			"--data-path=" + filepath.Join(dir, name, "data")}
	}
	admin := add("nsqadmin", RoleNSQAdmin, bins.NSQAdmin, map[int]string{PortNSQAdmin: pick()})
	admin.Args = []string{"--http-address=" + admin.Addr(PortNSQAdmin), "--lookupd-http-address=" + lookupd.Addr(PortLookupdHTTP)}

	for _, name := range []string{"seckill1", "seckill2"} {
		s := add(name, RoleSeckill, bins.Seckill, map[int]string{PortHTTP: pick(), PortMetrics: pick()})
		s.Env = st.instanceEnv(s)
	}
	nginx := add("nginx", RoleNginx, bins.Nginx, map[int]string{PortHTTP: pick()})
	nginx.Args = []string{"-p", nginx.Dir + "/", "-c", filepath.Join(nginx.Dir, "nginx.conf"), "-e", filepath.Join(nginx.Dir, "error.log")}
	prom := add("prometheus", RolePrometheus, bins.Prometheus, map[int]string{PortPrometheus: pick()})
	prom.Args = []string{"--config.file=" + filepath.Join(prom.Dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(prom.Dir, "data"),
		"--web.listen-address=" + prom.Addr(PortPrometheus)}
	return st, errors.Join(errs...)
}

// instanceEnv is what docker-compose.yml gives seckill1 and seckill2, with
// the loopback addresses for the service names, root without a password,
// and the stack's admin token.
func (st *State) instanceEnv(self *Service) map[string]string {
	addrs := func(role string, port int) string {
		var out []string
		for _, s := range st.ByRole(role) {
			out = append(out, s.Addr(port))
		}
		return strings.Join(out, ",")
	}
	primary, second := st.Service("mysql").Addr(PortMySQL), st.Service("mysql-shard2").Addr(PortMySQL)
	return map[string]string{
		"SECKILL_HTTP_ADDR":           self.Addr(PortHTTP),
		"SECKILL_MYSQL_DSN":           dsn(primary),
		"SECKILL_MYSQL_SHARDS":        dsn(primary) + "," + dsn(second),
		"SECKILL_REDIS_CLUSTER_ADDRS": addrs(RoleRedis, PortRedis),
		"SECKILL_NSQ_NSQD":            addrs(RoleNSQD, PortNSQDTCP),
		"SECKILL_NSQ_LOOKUPD":         addrs(RoleLookupd, PortLookupdHTTP),
		"SECKILL_ADMIN_TOKEN":         st.AdminToken,
		"SECKILL_CONSUMER_ENABLED":    "true",
		"SECKILL_METRICS_ADDR":        self.Addr(PortMetrics),
		// nginx, on loopback, names the client in X-Forwarded-For.
		"SECKILL_LIMITS_TRUSTED_PROXIES": LoopbackNetwork,
	}
}

// portPicker picks the stack's ports above the kernel's range for port 0
// (32768-60999 by default, /proc/sys/net/ipv4/ip_local_port_range), so
// that no test's listener on :0 and no outgoing connection takes one
// between the pick and the start, and apart from the range below it where
// the fault suite picks its own (half the range's start up to it). Without
// room above, they come from a quarter to half of the range's start.
type portPicker struct {
	low, high int
	used      map[int]bool
}

func newPortPicker() (*portPicker, error) {
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		_, _ = fmt.Sscan(string(b), &lo, &hi)
	}
	p := &portPicker{low: hi + 1, high: 65535, used: map[int]bool{}}
	if p.high-p.low < 1000 {
		p.low, p.high = max(1024, lo/4), lo/2-1
	}
	if p.high-p.low < 100 {
		return nil, fmt.Errorf("no room for the stack's ports around the ephemeral range %d-%d", lo, hi)
	}
	return p, nil
}

// pick returns 127.0.0.1 and a port free now, not picked before.
func (p *portPicker) pick() (string, error) {
	for range 200 {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(p.high-p.low+1)))
		if err != nil {
			return "", err
		}
		port := p.low + int(n.Int64())
		if p.used[port] || !free(port) {
			continue
		}
		p.used[port] = true
		return "127.0.0.1:" + strconv.Itoa(port), nil
	}
	return "", fmt.Errorf("no free loopback port in %d-%d", p.low, p.high)
}

func free(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
