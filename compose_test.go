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
			DependsOn   map[string]any `yaml:"depends_on"`
			Healthcheck *struct{ Test []string }
		}
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	svc := compose.Services
	for _, name := range []string{"mysql", "mysql-shard2", "redis", "nsqlookupd", "nsqd1", "nsqd2", "nsqadmin", "seckill1", "seckill2", "nginx"} {
		if _, ok := svc[name]; !ok {
			t.Errorf("service %s is missing", name)
		}
	}
	// The port each dependency listens on inside the network.
	listens := map[string]string{"mysql": "3306", "mysql-shard2": "3306", "redis": "6379",
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
	nodes := map[string]bool{}
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
			env[k] = expandDefaults(v)
		}
		for _, k := range []string{"SECKILL_MYSQL_DSN", "SECKILL_MYSQL_SHARDS", "SECKILL_REDIS_ADDR", "SECKILL_NSQ_NSQD", "SECKILL_ADMIN_TOKEN", "SECKILL_SNOWFLAKE_NODE"} {
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
		if nodes[env["SECKILL_SNOWFLAKE_NODE"]] {
			t.Errorf("%s reuses snowflake node %s", name, env["SECKILL_SNOWFLAKE_NODE"])
		}
		nodes[env["SECKILL_SNOWFLAKE_NODE"]] = true
		for _, dsn := range append([]string{cfg.PrimaryDSN()}, cfg.ShardDSNs()...) {
			c, err := mysql.ParseDSN(dsn)
			if err != nil {
				t.Fatal(err)
			}
			reaches(name+" mysql", c.Addr)
		}
		reaches(name+" redis.addr", cfg.Redis.Addr)
		for _, a := range append(cfg.NSQDAddrs(), cfg.LookupdAddrs()...) {
			reaches(name+" nsq", a)
		}
		if _, port, _ := net.SplitHostPort(cfg.HTTP.Addr); port != listens[name] {
			t.Errorf("%s listens on %s, the compose file expects %s", name, cfg.HTTP.Addr, listens[name])
		}
		for dep := range s.DependsOn {
			if svc[dep].Healthcheck == nil {
				t.Errorf("%s waits for %s, which has no health check", name, dep)
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
	if ports := svc["nginx"].Ports; len(ports) == 0 || !strings.HasSuffix(expandDefaults(ports[0]), ":8080") {
		t.Errorf("nginx ports %v: want the service published on 8080", ports)
	}
}

// expandDefaults replaces ${VAR:-default} by its default, as compose does
// when VAR is unset.
func expandDefaults(s string) string {
	return regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`).ReplaceAllString(s, "$1")
}
