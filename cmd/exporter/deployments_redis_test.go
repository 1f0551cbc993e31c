package main

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/hibiken/asynq"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/geoexport/exporter/internal/job"
	"github.com/geoexport/exporter/internal/redisconn"
)

// The Redis of the deployments: EXPORTER_REDIS_URL names a Redis the same
// deployment runs (one server, or sentinels watching the servers), every
// redis-server keeps an AOF on a volume, and the sentinels monitor the
// master the URL names.

// sentinelMasterOf returns the master a sentinel's start script monitors,
// "" for a script that runs no sentinel.
func sentinelMasterOf(script string) string {
	if !strings.Contains(script, "--sentinel") {
		return ""
	}
	_, rest, ok := strings.Cut(script, "sentinel monitor ")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, " ")
	return name
}

// checkPersistent checks that a redis-server's command line (or start
// script) turns on the AOF in dir, and that dir is on a volume.
func checkPersistent(t *testing.T, where, script string, volumes []string) {
	t.Helper()
	if !strings.Contains(script, "--appendonly yes") || !strings.Contains(script, "--maxmemory-policy noeviction") {
		t.Errorf("%s: redis-server without --appendonly yes and --maxmemory-policy noeviction: %q", where, script)
	}
	if !slices.Contains(volumes, "/data") {
		t.Errorf("%s: the AOF directory /data is on no volume (%v)", where, volumes)
	}
}

func TestDeploymentsKustomizeSentinel(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"k8s", "k8s-sentinel"} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
			res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(deploymentsDir, dir))
			if err != nil {
				t.Fatalf("kustomize deployments/%s: %v", dir, err)
			}
			out, err := res.AsYaml()
			if err != nil {
				t.Fatal(err)
			}
			var ms []manifest
			for _, d := range decodeYAML(t, "kustomize output", out) {
				ms = append(ms, manifest{file: "deployments/" + dir, doc: d})
			}
			if dir != "k8s" {
				checkKubernetes(t, ms) // the base has TestDeploymentsKustomize
			}
			checkK8sRedis(t, ms, dir != "k8s")
		})
	}
}

// k8sRedisPod is a StatefulSet running redis-server or a sentinel.
type k8sRedisPod struct {
	name, service string
	replicas      int
	script        string // command and arguments, joined
	ports         map[int]bool
	volumes       []string // mount paths of volume claim templates
	passwordEnv   string   // the Secret key of REDIS_PASSWORD
}

// checkK8sRedis checks the Redis of rendered manifests; sentinel says
// whether the URL must be a Sentinel one.
func checkK8sRedis(t *testing.T, ms []manifest, sentinel bool) {
	t.Helper()
	var secret map[string]any
	services := map[string]map[string]any{} // name → spec
	var pods []k8sRedisPod
	var scaled, auths []map[string]any
	for _, m := range ms {
		spec := asMap(m.doc["spec"])
		switch asString(m.doc["kind"]) {
		case "Secret":
			if metaName(m.doc) == "exporter-secrets" {
				secret = asMap(m.doc["stringData"])
			}
		case "Service":
			services[metaName(m.doc)] = spec
		case "ScaledObject":
			scaled = append(scaled, spec)
		case "TriggerAuthentication":
			auths = append(auths, m.doc)
		case "StatefulSet":
			claims := map[string]bool{}
			for _, vct := range asSlice(spec["volumeClaimTemplates"]) {
				claims[metaName(asMap(vct))] = true
			}
			for _, c := range asSlice(asMap(asMap(spec["template"])["spec"])["containers"]) {
				c := asMap(c)
				if imageRepo(asString(c["image"])) != "redis" {
					continue
				}
				p := k8sRedisPod{name: metaName(m.doc), service: asString(spec["serviceName"]), replicas: asInt(spec["replicas"]),
					script: strings.Join(append(asStrings(c["command"]), asStrings(c["args"])...), " "), ports: map[int]bool{}}
				for _, port := range asSlice(c["ports"]) {
					p.ports[asInt(asMap(port)["containerPort"])] = true
				}
				for _, vm := range asSlice(c["volumeMounts"]) {
					if claims[asString(asMap(vm)["name"])] {
						p.volumes = append(p.volumes, asString(asMap(vm)["mountPath"]))
					}
				}
				for _, e := range asSlice(c["env"]) {
					if ref := asMap(asMap(asMap(e)["valueFrom"])["secretKeyRef"]); asString(asMap(e)["name"]) == "REDIS_PASSWORD" && asString(ref["name"]) == "exporter-secrets" {
						p.passwordEnv = asString(ref["key"])
					}
				}
				pods = append(pods, p)
			}
		}
	}
	if secret == nil {
		t.Fatal("no Secret exporter-secrets with stringData")
	}
	rawURL := asString(secret["EXPORTER_REDIS_URL"])
	opt, err := redisconn.Parse(rawURL)
	if err != nil {
		t.Fatalf("EXPORTER_REDIS_URL: %v", err)
	}
	for _, p := range pods {
		where := "StatefulSet " + p.name
		if p.passwordEnv == "" || secret[p.passwordEnv] == nil || !strings.Contains(p.script, "requirepass") {
			t.Errorf("%s: want requirepass with REDIS_PASSWORD from a key of exporter-secrets", where)
		}
		if sentinelMasterOf(p.script) == "" {
			checkPersistent(t, where, p.script, p.volumes)
		}
	}
	// podOf finds the pod a host name of the URL reaches: a Service of a
	// StatefulSet, or one of its pods through its headless Service.
	podOf := func(addr string) (k8sRedisPod, int) {
		host, port, _ := net.SplitHostPort(addr)
		host = strings.TrimSuffix(host, ".exporter.svc.cluster.local")
		n, _ := strconv.Atoi(port)
		for _, p := range pods {
			if p.service == "" || !p.ports[n] {
				continue
			}
			for i := range p.replicas {
				if host == fmt.Sprintf("%s-%d.%s", p.name, i, p.service) {
					return p, n
				}
			}
			if _, ok := services[host]; ok && strings.HasPrefix(host, p.name) {
				return p, n
			}
		}
		t.Errorf("EXPORTER_REDIS_URL: %s reaches no Redis pod of the manifests", addr)
		return k8sRedisPod{}, n
	}
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		if sentinel {
			t.Errorf("EXPORTER_REDIS_URL %s: want a redis-sentinel:// URL", rawURL)
		}
		if p, _ := podOf(o.Addr); sentinelMasterOf(p.script) != "" {
			t.Errorf("EXPORTER_REDIS_URL: %s is a sentinel, not a Redis", o.Addr)
		}
		if o.Password != asString(secret["REDIS_PASSWORD"]) {
			t.Error("EXPORTER_REDIS_URL: the password is not REDIS_PASSWORD")
		}
	case asynq.RedisFailoverClientOpt:
		if !sentinel {
			t.Errorf("EXPORTER_REDIS_URL %s: the base runs no sentinels", rawURL)
		}
		if len(o.SentinelAddrs) < 3 {
			t.Errorf("EXPORTER_REDIS_URL names %d sentinels, want at least 3", len(o.SentinelAddrs))
		}
		for _, a := range o.SentinelAddrs {
			if p, _ := podOf(a); sentinelMasterOf(p.script) != o.MasterName {
				t.Errorf("EXPORTER_REDIS_URL: sentinel %s monitors %q, want the URL's master %q", a, sentinelMasterOf(p.script), o.MasterName)
			}
		}
		if o.Password != asString(secret["REDIS_PASSWORD"]) || o.SentinelPassword != o.Password {
			t.Error("EXPORTER_REDIS_URL: the password is not REDIS_PASSWORD")
		}
		checkSentinelTriggers(t, scaled, auths, secret, o)
	}
}

// checkSentinelTriggers checks KEDA's redis-sentinel triggers: one per
// export queue, on its list of pending tasks, through the URL's sentinels,
// authenticated with the Secret's password.
func checkSentinelTriggers(t *testing.T, scaled, auths []map[string]any, secret map[string]any, o asynq.RedisFailoverClientOpt) {
	t.Helper()
	authKeys := map[string][]string{} // TriggerAuthentication → Secret keys
	for _, a := range auths {
		for _, r := range asSlice(asMap(a["spec"])["secretTargetRef"]) {
			r := asMap(r)
			if asString(r["name"]) != "exporter-secrets" || secret[asString(r["key"])] == nil {
				t.Errorf("TriggerAuthentication %s: %v is no key of exporter-secrets", metaName(a), r)
			}
			authKeys[metaName(a)] = append(authKeys[metaName(a)], asString(r["parameter"]))
		}
	}
	var lists []string
	for _, spec := range scaled {
		for _, tr := range asSlice(spec["triggers"]) {
			tr := asMap(tr)
			if asString(tr["type"]) != "redis-sentinel" {
				continue
			}
			md := asMap(tr["metadata"])
			if asString(md["addresses"]) != strings.Join(o.SentinelAddrs, ",") || asString(md["sentinelMaster"]) != o.MasterName ||
				asString(md["databaseIndex"]) != strconv.Itoa(o.DB) {
				t.Errorf("redis-sentinel trigger %v: want the sentinels, master and database of EXPORTER_REDIS_URL", md)
			}
			if params := authKeys[asString(asMap(tr["authenticationRef"])["name"])]; !slices.Contains(params, "password") || !slices.Contains(params, "sentinelPassword") {
				t.Errorf("redis-sentinel trigger on %s: authentication %v, want password and sentinelPassword", asString(md["listName"]), params)
			}
			lists = append(lists, asString(md["listName"]))
		}
	}
	for _, q := range job.Queues {
		// asynq's list of a queue's pending tasks.
		if want := "asynq:{" + q + "}:pending"; !slices.Contains(lists, want) {
			t.Errorf("no redis-sentinel trigger on %s (triggers on %v)", want, lists)
		}
	}
}

func TestDeploymentsComposeRedis(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		files    []string
		sentinel bool
	}{
		{[]string{"compose.yaml"}, false},
		{[]string{"compose.yaml", "compose.sentinel.yaml"}, true},
	} {
		t.Run(strings.Join(tc.files, "+"), func(t *testing.T) {
			t.Parallel()
			checkComposeRedis(t, loadCompose(t, tc.files...), tc.sentinel)
		})
	}
}

// checkComposeRedis checks the Redis of a Compose project: every exporter
// role has one EXPORTER_REDIS_URL, naming services of the project (the
// sentinels of the URL's master, or a redis-server), and every
// redis-server keeps an AOF on a volume.
func checkComposeRedis(t *testing.T, p *types.Project, sentinel bool) {
	t.Helper()
	script := func(s types.ServiceConfig) string { return strings.Join(s.Command, " ") }
	for name, s := range p.Services {
		if imageRepo(s.Image) != "redis" || sentinelMasterOf(script(s)) != "" {
			continue
		}
		var volumes []string
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume {
				volumes = append(volumes, v.Target)
			}
		}
		checkPersistent(t, "service "+name, script(s), volumes)
	}
	urls := map[string]bool{}
	for _, role := range []string{"trigger", "worker", "scheduler"} {
		s, ok := p.Services[role]
		if !ok || s.Environment["EXPORTER_REDIS_URL"] == nil {
			t.Fatalf("service %s has no EXPORTER_REDIS_URL", role)
		}
		u := *s.Environment["EXPORTER_REDIS_URL"]
		urls[u] = true
		opt, err := redisconn.Parse(u)
		if err != nil {
			t.Fatalf("service %s: EXPORTER_REDIS_URL: %v", role, err)
		}
		var addrs []string
		master := ""
		switch o := opt.(type) {
		case asynq.RedisClientOpt:
			addrs = []string{o.Addr}
		case asynq.RedisFailoverClientOpt:
			addrs, master = o.SentinelAddrs, o.MasterName
		}
		if (master != "") != sentinel {
			t.Errorf("service %s: EXPORTER_REDIS_URL %s, want a Sentinel URL: %v", role, u, sentinel)
		}
		for _, a := range addrs {
			host, _, _ := net.SplitHostPort(a)
			target, ok := p.Services[host]
			if !ok {
				t.Errorf("service %s: EXPORTER_REDIS_URL names %s, which is no service", role, host)
				continue
			}
			if got := sentinelMasterOf(script(target)); got != master {
				t.Errorf("service %s: EXPORTER_REDIS_URL reaches %s, which monitors master %q; want %q", role, host, got, master)
			}
			if _, ok := s.DependsOn[host]; !ok {
				t.Errorf("service %s does not depend on %s, which its EXPORTER_REDIS_URL names", role, host)
			}
		}
	}
	if len(urls) != 1 {
		t.Errorf("the roles have different Redis URLs: %v", urls)
	}
}
