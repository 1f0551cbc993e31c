package redisserver

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// renderConf returns the redis.conf of a server over dir listening on ep.
func renderConf(dir string, ep endpoint) string {
	var b strings.Builder
	line := func(key string, values ...string) {
		b.WriteString(key)
		for _, v := range values {
			b.WriteString(" ")
			b.WriteString(quote(v))
		}
		b.WriteString("\n")
	}
	b.WriteString("# Written by the exporter each time it starts redis-server; edits are lost.\n")
	line("daemonize", "no")
	line("dir", dir)
	line("pidfile", filepath.Join(dir, pidFile))
	line("logfile", "") // standard output, which goes to redis.log
	line("loglevel", "notice")
	line("always-show-logo", "no")
	line("protected-mode", "yes")
	switch ep.network {
	case "unix":
		line("port", "0")
		line("unixsocket", ep.addr)
		line("unixsocketperm", "700")
	case "tcp":
		host, port, _ := net.SplitHostPort(ep.addr)
		line("bind", host)
		line("port", port)
		line("requirepass", ep.password)
	}
	// Durability is the append-only file, written out every second; no
	// RDB snapshots besides the AOF's own base.
	line("appendonly", "yes")
	line("appendfsync", "everysec")
	line("save", "")
	// The job store and the queues must never lose keys to memory pressure.
	line("maxmemory-policy", "noeviction")
	return b.String()
}

// quote writes s as a double-quoted redis.conf argument.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := range len(s) {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// unquote reads an argument written by quote.
func unquote(s string) (string, error) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", fmt.Errorf("not a quoted argument: %q", s)
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\'):
			b.WriteByte(s[i+1])
			i++
		case i+3 < len(s) && s[i+1] == 'x':
			n, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				return "", fmt.Errorf("bad escape in %q", s)
			}
			b.WriteByte(byte(n))
			i += 3
		default:
			return "", fmt.Errorf("bad escape in %q", s)
		}
	}
	return b.String(), nil
}

// readEndpoint reads where the server of an earlier start listened from the
// redis.conf it was given.
func readEndpoint(path string) (endpoint, bool) {
	f, err := os.Open(path)
	if err != nil {
		return endpoint{}, false
	}
	defer f.Close()
	v := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, arg, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(key, "#") {
			continue
		}
		if s, err := unquote(arg); err == nil {
			v[key] = s
		}
	}
	switch {
	case v["port"] == "0" && v["unixsocket"] != "":
		return endpoint{network: "unix", addr: v["unixsocket"]}, true
	case v["port"] != "" && v["port"] != "0" && v["bind"] != "":
		return endpoint{network: "tcp", addr: net.JoinHostPort(v["bind"], v["port"]), password: v["requirepass"]}, true
	}
	return endpoint{}, false
}
