package main_test

import (
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"go.yaml.in/yaml/v3"

	"github.com/go-seckill/seckill/config"
)

// No Docker engine runs where this project is tested, so docker-compose.yml
// is checked by reading it: every service it names, port it maps and
// variable it passes agrees with what the service reads.
func TestDockerComposeAgreesWithTheConfiguration(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string
			Build       any
			Environment map[string]string
			Ports       []string
			Volumes     []string
			DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
			Healthcheck *struct{ Test []string }
			Restart     string
		}
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	svc := compose.Services

	// No secret has a default anyone can guess: the MySQL password and the
	// admin token are required variables, so compose refuses to start
	// without them.
	if strings.Contains(string(raw), "change-me") {
		t.Error("docker-compose.yml still holds the default secret change-me")
	}
	for _, m := range variableRef.FindAllStringSubmatch(string(raw), -1) {
		if secrets[m[1]] != "" && m[2] != ":?" {
			t.Errorf("%s must be a required variable (${%s:?message}), not %s", m[1], m[1], m[0])
		}
	}
	for _, name := range []string{"mysql", "mysql-shard2"} {
		if v := svc[name].Environment["MYSQL_ROOT_PASSWORD"]; !strings.HasPrefix(v, "${MYSQL_ROOT_PASSWORD:?") {
			t.Errorf("%s: MYSQL_ROOT_PASSWORD is %q, want the required ${MYSQL_ROOT_PASSWORD:?...}", name, v)
		}
	}
	for _, name := range []string{"mysql", "mysql-shard2", "redis1", "redis2", "redis3", "redis-cluster", "nsqlookupd", "nsqd1", "nsqd2", "nsqadmin", "seckill1", "seckill2", "nginx", "prometheus", "grafana"} {
		if _, ok := svc[name]; !ok {
			t.Errorf("service %s is missing", name)
		}
	}
	// The port each dependency listens on inside the network.
	listens := map[string]string{"mysql": "3306", "mysql-shard2": "3306", "redis1": "6379", "redis2": "6379", "redis3": "6379",
		"nsqd1": "4150", "nsqd2": "4150", "nsqlookupd": "4161", "seckill1": "8080", "seckill2": "8080"}
	reaches := func(where, hostport string) {
		host, port, err := net.SplitHostPort(hostport)
		if err != nil || listens[host] == "" || listens[host] != port {
			t.Errorf("%s points at %q, which is no service port of the compose file", where, hostport)
		}
	}

	known := map[string]bool{}
	for _, k := range config.Keys() {
		known[config.EnvName(k)] = true
	}
	nodes := map[int64]bool{}
	for _, name := range []string{"seckill1", "seckill2"} {
		s := svc[name]
		if s.Build == nil {
			t.Errorf("%s: no build (the Dockerfile builds the service)", name)
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			if !known[k] {
				t.Errorf("%s passes %s, which the service does not read", name, k)
			}
			env[k] = expand(t, v)
		}
		if v := s.Environment["SECKILL_ADMIN_TOKEN"]; !strings.HasPrefix(v, "${SECKILL_ADMIN_TOKEN:?") {
			t.Errorf("%s: SECKILL_ADMIN_TOKEN is %q, want the required ${SECKILL_ADMIN_TOKEN:?...}", name, v)
		}
		for _, k := range []string{"SECKILL_MYSQL_DSN", "SECKILL_MYSQL_SHARDS", "SECKILL_REDIS_CLUSTER_ADDRS", "SECKILL_NSQ_NSQD", "SECKILL_ADMIN_TOKEN"} {
			if env[k] == "" {
				t.Errorf("%s does not set %s", name, k)
			}
		}
		cfg, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Errorf("%s: its environment is not a valid configuration: %v", name, err)
			continue
		}
		if cfg.IsStandalone() {
			t.Errorf("%s would run standalone", name)
		}
		if cfg.Admin.Token != secrets["SECKILL_ADMIN_TOKEN"] {
			t.Errorf("%s: admin token %q does not come from SECKILL_ADMIN_TOKEN", name, cfg.Admin.Token)
		}
		// Each instance has its own snowflake node, or leases a free one.
		if n := cfg.Snowflake.Node; n != config.AutoNode {
			if nodes[n] {
				t.Errorf("%s reuses snowflake node %d", name, n)
			}
			nodes[n] = true
		}
		for _, dsn := range append([]string{cfg.PrimaryDSN()}, cfg.ShardDSNs()...) {
			c, err := mysql.ParseDSN(dsn)
			if err != nil {
				t.Fatal(err)
			}
			reaches(name+" mysql", c.Addr)
			if c.Passwd != secrets["MYSQL_ROOT_PASSWORD"] {
				t.Errorf("%s: the password of %s does not come from MYSQL_ROOT_PASSWORD", name, c.Addr)
			}
		}
		// Every master of the cluster is a seed.
		redisNodes := cfg.RedisClusterAddrs()
		for _, a := range redisNodes {
			reaches(name+" redis.cluster_addrs", a)
		}
		if len(redisNodes) != 3 || cfg.Redis.Addr != "" {
			t.Errorf("%s: redis.cluster_addrs %v (redis.addr %q), want the three masters and no single server", name, redisNodes, cfg.Redis.Addr)
		}
		for _, a := range append(cfg.NSQDAddrs(), cfg.LookupdAddrs()...) {
			reaches(name+" nsq", a)
		}
		if _, port, _ := net.SplitHostPort(cfg.HTTP.Addr); port != listens[name] {
			t.Errorf("%s listens on %s, the compose file expects %s", name, cfg.HTTP.Addr, listens[name])
		}
		// Metrics on their own port, which no service publishes.
		if _, port, _ := net.SplitHostPort(cfg.Metrics.Addr); port != metricsPort {
			t.Errorf("%s serves metrics on %q, Prometheus scrapes port %s", name, cfg.Metrics.Addr, metricsPort)
		}
		for _, p := range s.Ports {
			if strings.HasSuffix(expand(t, p), ":"+metricsPort) {
				t.Errorf("%s publishes its metrics port: %s", name, p)
			}
		}
		for dep, how := range s.DependsOn {
			switch how.Condition {
			case "service_healthy":
				if svc[dep].Healthcheck == nil {
					t.Errorf("%s waits for %s, which has no health check", name, dep)
				}
			case "service_completed_successfully":
				if svc[dep].Restart != "no" {
					t.Errorf("%s waits for %s to complete, which restarts (%q)", name, dep, svc[dep].Restart)
				}
			default:
				t.Errorf("%s waits for %s to be %q, not healthy", name, dep, how.Condition)
			}
		}
		if s.Healthcheck == nil || !strings.Contains(strings.Join(s.Healthcheck.Test, " "), ":"+listens[name]+"/readyz") {
			t.Errorf("%s: health check should ask /readyz on its port", name)
		}
	}

	// nginx balances over both instances on their port, and publishes 8080.
	conf, err := os.ReadFile("deploy/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	upstreams := regexp.MustCompile(`server\s+([\w-]+:\d+)`).FindAllStringSubmatch(string(conf), -1)
	var servers []string
	for _, m := range upstreams {
		reaches("nginx upstream", m[1])
		servers = append(servers, m[1])
	}
	if !slices.Contains(servers, "seckill1:8080") || !slices.Contains(servers, "seckill2:8080") {
		t.Errorf("nginx upstream %v does not hold both instances", servers)
	}
	if ports := svc["nginx"].Ports; len(ports) == 0 || !strings.HasSuffix(expand(t, ports[0]), ":8080") {
		t.Errorf("nginx ports %v: want the service published on 8080", ports)
	}

	// Prometheus scrapes both instances' metrics port with the rules of
	// deploy/prometheus; Grafana gets its provisioning and dashboards from
	// deploy/grafana and its password from a required variable.
	prom, err := os.ReadFile("deploy/prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var promCfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			MetricsPath   string                       `yaml:"metrics_path"`
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(prom, &promCfg); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, sc := range promCfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	for _, name := range []string{"seckill1", "seckill2"} {
		if !slices.Contains(targets, name+":"+metricsPort) {
			t.Errorf("prometheus scrapes %v, not %s:%s", targets, name, metricsPort)
		}
	}
	for _, f := range promCfg.RuleFiles {
		if _, err := os.Stat("deploy/prometheus/" + f); err != nil {
			t.Errorf("prometheus rule file %s: %v", f, err)
		}
	}
	mounts := func(name, src, dst string) {
		for _, v := range svc[name].Volumes {
			if strings.HasPrefix(v, src+":"+dst) {
				return
			}
		}
		t.Errorf("%s does not mount %s at %s (volumes %v)", name, src, dst, svc[name].Volumes)
	}
	mounts("prometheus", "./deploy/prometheus", "/etc/prometheus")
	mounts("grafana", "./deploy/grafana/provisioning", "/etc/grafana/provisioning")
	mounts("grafana", "./deploy/grafana/dashboards", "/var/lib/grafana/dashboards")
	if v := svc["grafana"].Environment["GF_SECURITY_ADMIN_PASSWORD"]; !strings.HasPrefix(v, "${GRAFANA_ADMIN_PASSWORD:?") {
		t.Errorf("grafana: GF_SECURITY_ADMIN_PASSWORD is %q, want the required ${GRAFANA_ADMIN_PASSWORD:?...}", v)
	}
	for _, name := range []string{"prometheus", "grafana"} {
		for _, p := range svc[name].Ports {
			if !strings.HasPrefix(expand(t, p), "127.0.0.1:") {
				t.Errorf("%s publishes %s beyond 127.0.0.1 by default", name, p)
			}
		}
	}
}

// metricsPort is where the compose file's instances serve /metrics.
const metricsPort = "9100"

// secrets are the values the test gives the variables that must be set
// (compose reads them from the environment or an .env file).
var secrets = map[string]string{
	"MYSQL_ROOT_PASSWORD":    "pw0123abcd",
	"SECKILL_ADMIN_TOKEN":    "token0123abcd",
	"GRAFANA_ADMIN_PASSWORD": "grafana0123abcd",
}

// variableRef is a compose variable reference: ${VAR}, ${VAR:-default},
// ${VAR-default}, ${VAR:?message} or ${VAR?message}.
var variableRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?([^}]*)\}`)

// expand replaces variable references as compose does: a required
// variable by its value in secrets (the test fails when it has none), any
// other by its default, as when it is unset.
func expand(t *testing.T, s string) string {
	t.Helper()
	return variableRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		switch {
		case strings.HasSuffix(m[2], "?"):
			v, ok := secrets[m[1]]
			if !ok {
				t.Errorf("%s is required, and the test has no value for it", m[1])
			}
			return v
		case strings.HasSuffix(m[2], "-"):
			return m[3]
		}
		t.Errorf("%s has neither a default nor is it required", ref)
		return ""
	})
}
