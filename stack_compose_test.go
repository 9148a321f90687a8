package main_test

import (
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"go.yaml.in/yaml/v3"

	"github.com/go-seckill/seckill/internal/stack"
)

// docker-compose.yml and the process stack (make stack, internal/stack)
// describe one deployment: the same services in the same roles, the
// instances given the same SECKILL_* variables with the same values (the
// stack's loopback address for each compose service's name, root without
// a password), the Redis nodes, MariaDB servers and NSQ daemons started
// with the same settings, and nginx and Prometheus configured from the
// compose files themselves. The stack is laid out, not started.
func TestTheProcessStackKeepsInStepWithDockerCompose(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string
			Build       any
			Command     []string
			Environment map[string]string
		}
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	st, err := stack.Plan(t.TempDir(), root, secrets["SECKILL_ADMIN_TOKEN"], stack.Bins{})
	if err != nil {
		t.Fatal(err)
	}

	// The same services, in the same roles; the compose-only ones named.
	var names []string
	for _, s := range st.Services {
		names = append(names, s.Name)
	}
	want := append(slices.Collect(maps.Keys(stack.ComposeOnly)), names...)
	want = append(want, stack.ClusterInit)
	slices.Sort(want)
	if got := slices.Sorted(maps.Keys(compose.Services)); !slices.Equal(got, want) {
		t.Errorf("compose services %v, the stack's (with what only compose runs) %v", got, want)
	}
	roleOf := func(name string) string {
		c := compose.Services[name]
		image, _, _ := strings.Cut(c.Image, ":")
		switch {
		case c.Build != nil:
			return stack.RoleSeckill
		case image == "nsqio/nsq" && len(c.Command) > 0:
			return strings.TrimPrefix(c.Command[0], "/")
		case image == "prom/prometheus":
			return stack.RolePrometheus
		}
		return image
	}
	for _, s := range st.Services {
		if r := roleOf(s.Name); r != s.Role {
			t.Errorf("%s is a %s in compose and a %s in the stack", s.Name, r, s.Role)
		}
	}

	// The instances' variables: the same names, and the same values once
	// compose's service names are the stack's addresses.
	for _, in := range st.ByRole(stack.RoleSeckill) {
		env := compose.Services[in.Name].Environment
		if got, want := slices.Sorted(maps.Keys(in.Env)), slices.Sorted(maps.Keys(env)); !slices.Equal(got, want) {
			t.Errorf("%s: the stack sets %v, compose %v", in.Name, got, want)
		}
		for k, v := range env {
			if got, want := normalize(t, in.Env[k]), normalize(t, translate(t, st, expand(t, v), in.Name)); got != want {
				t.Errorf("%s: %s is %q in the stack, compose's is %q", in.Name, k, got, want)
			}
		}
	}

	// The servers' settings.
	for _, s := range st.Services {
		cmd := compose.Services[s.Name].Command
		switch s.Role {
		case stack.RoleRedis:
			if len(cmd) == 0 || !slices.Equal(cmd[1:], stack.RedisFlags) {
				t.Errorf("%s: compose runs %v, the stack's settings are %v", s.Name, cmd, stack.RedisFlags)
			}
			if !containsRun(s.Args, stack.RedisFlags) {
				t.Errorf("%s: the stack runs %v, without %v", s.Name, s.Args, stack.RedisFlags)
			}
		case stack.RoleMySQL:
			if !slices.Equal(cmd, stack.MySQLFlags) || !containsRun(s.Args, stack.MySQLFlags) {
				t.Errorf("%s: compose runs %v, the stack %v", s.Name, cmd, s.Args)
			}
		case stack.RoleNSQD, stack.RoleNSQAdmin, stack.RoleLookupd:
			// Every flag compose gives, the stack gives; those naming
			// another service name its address.
			flags := flagValues(s.Args)
			for name, v := range flagValues(cmd[1:]) {
				got, ok := flags[name]
				switch {
				case !ok:
					t.Errorf("%s: compose sets --%s, the stack does not (%v)", s.Name, name, s.Args)
				case strings.HasSuffix(name, "-address") && strings.Contains(v, ":"):
					if want := translate(t, st, v, s.Name); got != want {
						t.Errorf("%s: --%s=%s in the stack, compose's %s is %s", s.Name, name, got, v, want)
					}
				}
			}
		}
	}

	// nginx: deploy/nginx.conf with the instances' addresses, line for line.
	tpl, err := os.ReadFile(stack.NginxTemplate)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := st.NginxConf(string(tpl))
	if err != nil {
		t.Fatal(err)
	}
	var servers []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+(\S+:\d+)`).FindAllStringSubmatch(conf, -1) {
		servers = append(servers, m[1])
	}
	if want := []string{st.Service("seckill1").Addr(stack.PortHTTP), st.Service("seckill2").Addr(stack.PortHTTP)}; !slices.Equal(servers, want) {
		t.Errorf("the stack's nginx balances over %v, want the instances %v", servers, want)
	}
	confLines := strings.Split(conf, "\n")
	for _, line := range strings.Split(string(tpl), "\n") {
		if strings.Contains(line, "server ") || strings.Contains(line, "listen ") {
			continue // the substituted ones
		}
		i := slices.Index(confLines, line)
		if i < 0 {
			t.Errorf("the stack's nginx.conf lacks the template's line %q", line)
			continue
		}
		confLines = confLines[i+1:]
	}

	// Prometheus: the instances' metrics listeners, the rules of deploy/.
	ptpl, err := os.ReadFile(stack.PrometheusTemplate)
	if err != nil {
		t.Fatal(err)
	}
	pconf, err := st.PrometheusConf(ptpl)
	if err != nil {
		t.Fatal(err)
	}
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(pconf, &prom); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		for _, s := range sc.StaticConfigs {
			targets = append(targets, s.Targets...)
		}
	}
	if want := []string{st.Service("seckill1").Addr(stack.PortMetrics), st.Service("seckill2").Addr(stack.PortMetrics)}; !slices.Equal(targets, want) {
		t.Errorf("the stack's Prometheus scrapes %v, want the instances' metrics listeners %v", targets, want)
	}
	if len(prom.RuleFiles) == 0 {
		t.Error("the stack's Prometheus loads no rules")
	}
	for _, f := range prom.RuleFiles {
		if _, err := os.Stat(f); err != nil || !strings.HasPrefix(f, filepath.Join(root, "deploy", "prometheus")) {
			t.Errorf("rule file %s: %v, want one of deploy/prometheus", f, err)
		}
	}
}

// translate replaces compose's service addresses in v (a list of
// host:port, :port of self, or MySQL DSNs) with the stack's.
func translate(t *testing.T, st *stack.State, v, self string) string {
	t.Helper()
	items := strings.Split(v, ",")
	// Networks (trusted proxies): compose's private ranges are loopback in
	// the stack, where nginx runs.
	if !slices.ContainsFunc(items, func(item string) bool { _, _, err := net.ParseCIDR(item); return err != nil }) {
		return stack.LoopbackNetwork
	}
	for i, item := range items {
		if c, err := mysql.ParseDSN(item); err == nil && c.Net == "tcp" {
			if c.Addr, err = st.Translate(c.Addr, self); err != nil {
				t.Error(err)
			}
			items[i] = c.FormatDSN()
			continue
		}
		if regexp.MustCompile(`^[\w.-]*:\d+$`).MatchString(item) {
			a, err := st.Translate(item, self)
			if err != nil {
				t.Error(err)
			}
			items[i] = a
		}
	}
	return strings.Join(items, ",")
}

// normalize writes DSNs in one form, without the password: compose's root
// has one, the stack's MariaDB root has none.
func normalize(t *testing.T, v string) string {
	t.Helper()
	items := strings.Split(v, ",")
	for i, item := range items {
		if c, err := mysql.ParseDSN(item); err == nil && c.Net == "tcp" {
			c.Passwd = ""
			items[i] = c.FormatDSN()
		}
	}
	return strings.Join(items, ",")
}

// flagValues reads --name=value flags.
func flagValues(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			k, v, _ := strings.Cut(name, "=")
			out[k] = v
		}
	}
	return out
}

// containsRun says whether run appears in args, in order and together.
func containsRun(args, run []string) bool {
	for i := 0; i+len(run) <= len(args); i++ {
		if slices.Equal(args[i:i+len(run)], run) {
			return true
		}
	}
	return false
}
