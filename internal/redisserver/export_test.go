package redisserver

// MaxSocketPath is the longest socket path the server listens on.
const MaxSocketPath = maxSocketPath

// Abandon releases the directory without stopping the server, as an
// exporter that died without taking its server along would.
func (s *Server) Abandon() error { return s.lock.Close() }

// Quote and Unquote are the redis.conf argument codec.
var (
	Quote   = quote
	Unquote = unquote
)
