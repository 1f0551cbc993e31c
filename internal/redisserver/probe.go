package redisserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// probe asks the server at ep for INFO server, after AUTH when it has a
// password and after PING when ping is set, and returns the fields of the
// answer. A raw connection keeps the probe free of connection pools and
// their logging. Without ping the probe also answers while the server loads
// its data.
func probe(ep endpoint, ping bool, timeout time.Duration) (map[string]string, error) {
	c, err := net.DialTimeout(ep.network, ep.addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	var cmds [][]string
	if ep.password != "" {
		cmds = append(cmds, []string{"AUTH", ep.password})
	}
	if ping {
		cmds = append(cmds, []string{"PING"})
	}
	cmds = append(cmds, []string{"INFO", "server"})
	var req strings.Builder
	for _, cmd := range cmds {
		fmt.Fprintf(&req, "*%d\r\n", len(cmd))
		for _, arg := range cmd {
			fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(arg), arg)
		}
	}
	if _, err := io.WriteString(c, req.String()); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	var body string
	for _, cmd := range cmds {
		reply, err := readReply(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cmd[0], err)
		}
		body = reply
	}
	info := map[string]string{}
	for l := range strings.SplitSeq(body, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			info[k] = v
		}
	}
	if info["process_id"] == "" {
		return nil, errors.New("INFO server has no process_id")
	}
	return info, nil
}

// readReply reads one simple-string or bulk-string reply; an error reply
// is returned as an error.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "-"):
		return "", fmt.Errorf("server replied %s", line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad reply %q", line)
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}
