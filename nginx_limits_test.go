package main_test

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/go-seckill/seckill/admission"
	"github.com/go-seckill/seckill/config"
)

// deploy/nginx.conf's limit_req zones hold the same limits as the
// instances' defaults: the rate per second, nginx's burst one less than the
// instances' bucket size, nodelay where the mode is nodelay. With nginx
// installed, the file also passes nginx -t.
func TestNginxLimitsMatchTheConfig(t *testing.T) {
	cfg, err := config.Load("", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("deploy/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for zone, l := range map[string]admission.Limit{"order_ip": cfg.Limits.Order.IP, "captcha_ip": cfg.Limits.Captcha.IP} {
		m := regexp.MustCompile(`limit_req_zone \$binary_remote_addr zone=` + zone + `:\w+ rate=(\d+)r/s;`).FindStringSubmatch(conf)
		if m == nil {
			t.Errorf("no limit_req_zone %s", zone)
			continue
		}
		if l.Period != time.Second || strconv.Itoa(l.Rate) != m[1] {
			t.Errorf("zone %s: rate=%sr/s, the config's %d per %v", zone, m[1], l.Rate, l.Period)
		}
		m = regexp.MustCompile(`limit_req zone=` + zone + ` burst=(\d+)( nodelay)?;`).FindStringSubmatch(conf)
		if m == nil {
			t.Errorf("no limit_req zone=%s", zone)
			continue
		}
		if m[1] != strconv.Itoa(l.Burst-1) || (m[2] != "") != (l.Mode == admission.NoDelay) {
			t.Errorf("limit_req zone=%s burst=%s%s, the config's burst %d mode %s (nginx: burst-1, nodelay)", zone, m[1], m[2], l.Burst, l.Mode)
		}
	}
	if _, err := exec.LookPath("nginx"); err == nil {
		// The upstreams' names resolve only on the compose network; -t
		// checks the syntax up to them.
		out, _ := exec.Command("nginx", "-t", "-c", mustAbs(t, "deploy/nginx.conf")).CombinedOutput()
		if regexp.MustCompile(`(?i)(unknown directive|invalid|unexpected)`).Match(out) {
			t.Errorf("nginx -t: %s", out)
		}
	}
}

func mustAbs(t *testing.T, path string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd + "/" + path
}
