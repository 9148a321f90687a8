package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The compose stack's configuration files the stack's are made from.
const (
	NginxTemplate      = "deploy/nginx.conf"
	PrometheusTemplate = "deploy/prometheus/prometheus.yml"
)

var (
	upstreamServer = regexp.MustCompile(`(?m)^(\s*server\s+)([\w.-]+:\d+)`)
	listenPort     = regexp.MustCompile(`(?m)^(\s*listen\s+)(\d+)(\s*;)`)
	httpBlock      = regexp.MustCompile(`(?m)^http\s*\{\n`)
)

// NginxConf is deploy/nginx.conf (template) with the loopback addresses
// for its upstream servers and its listener, kept in the foreground with
// its pid and temporary files in the nginx service's folder. Everything
// else, the balancing and the retries among it, is the template's.
func (st *State) NginxConf(template string) (string, error) {
	nginx := st.Service("nginx")
	var err error
	conf := upstreamServer.ReplaceAllStringFunc(template, func(m string) string {
		sub := upstreamServer.FindStringSubmatch(m)
		addr, terr := st.Translate(sub[2], "")
		if terr != nil {
			err = terr
		}
		return sub[1] + addr
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", NginxTemplate, err)
	}
	if n := len(listenPort.FindAllString(conf, -1)); n != 1 {
		return "", fmt.Errorf("%s: %d listen directives, want 1", NginxTemplate, n)
	}
	conf = listenPort.ReplaceAllString(conf, "${1}"+nginx.Addr(PortHTTP)+"${3}")
	if !httpBlock.MatchString(conf) {
		return "", fmt.Errorf("%s: no http block", NginxTemplate)
	}
	tmp := filepath.Join(nginx.Dir, "tmp")
	var paths strings.Builder
	paths.WriteString("    # The stack's: temporary files in its folder.\n")
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&paths, "    %s_temp_path %s;\n", p, filepath.Join(tmp, p))
	}
	conf = httpBlock.ReplaceAllLiteralString(conf, "http {\n"+paths.String()+"\n")
	head := fmt.Sprintf("# Made by internal/stack from %s.\ndaemon off;\npid %s;\n\n",
		NginxTemplate, filepath.Join(nginx.Dir, "nginx.pid"))
	return head + conf, nil
}

// PrometheusConf is deploy/prometheus/prometheus.yml (template) with the
// instances' metrics addresses for their compose names and the rule files
// named by their path in the repository.
func (st *State) PrometheusConf(template []byte) ([]byte, error) {
	var cfg map[string]any
	if err := yaml.Unmarshal(template, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", PrometheusTemplate, err)
	}
	rules, _ := cfg["rule_files"].([]any)
	for i, r := range rules {
		name, _ := r.(string)
		if !filepath.IsAbs(name) {
			rules[i] = filepath.Join(st.Root, filepath.Dir(PrometheusTemplate), name)
		}
	}
	scrapes, _ := cfg["scrape_configs"].([]any)
	found := 0
	for _, sc := range scrapes {
		sc, _ := sc.(map[string]any)
		statics, _ := sc["static_configs"].([]any)
		for _, s := range statics {
			s, _ := s.(map[string]any)
			targets, _ := s["targets"].([]any)
			for i, t := range targets {
				name, _ := t.(string)
				addr, err := st.Translate(name, "")
				if err != nil {
					return nil, fmt.Errorf("%s: target %w", PrometheusTemplate, err)
				}
				targets[i] = addr
				found++
			}
		}
	}
	if found == 0 {
		return nil, fmt.Errorf("%s: no scrape target", PrometheusTemplate)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Made by internal/stack from "+PrometheusTemplate+".\n"), out...), nil
}

// writeConfigs writes nginx's and Prometheus's files into their folders.
func (st *State) writeConfigs() error {
	tpl, err := os.ReadFile(filepath.Join(st.Root, NginxTemplate))
	if err != nil {
		return err
	}
	conf, err := st.NginxConf(string(tpl))
	if err != nil {
		return err
	}
	nginx := st.Service("nginx")
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		if err := os.MkdirAll(filepath.Join(nginx.Dir, "tmp", p), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(nginx.Dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	ptpl, err := os.ReadFile(filepath.Join(st.Root, PrometheusTemplate))
	if err != nil {
		return err
	}
	pconf, err := st.PrometheusConf(ptpl)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(st.Service("prometheus").Dir, "prometheus.yml"), pconf, 0o644)
}
