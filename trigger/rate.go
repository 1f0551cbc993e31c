package trigger

import (
	"strconv"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/gofiber/fiber/v2"

	"github.com/geoexport/exporter/internal/logattr"
)

// rateLimit allows each subject RateLimit requests a minute with bursts of
// RateBurst, counted in Redis so every trigger replica shares the budget.
// If Redis cannot answer, the request goes through: the limiter protects
// the service, it must not take it down.
func (s *Server) rateLimit(c *fiber.Ctx) error {
	if s.cfg.RateLimit <= 0 {
		return c.Next()
	}
	p, _ := PrincipalFrom(c)
	limit := redis_rate.Limit{Rate: s.cfg.RateLimit, Burst: s.cfg.RateBurst, Period: time.Minute}
	res, err := s.deps.Limiter.Allow(c.UserContext(), "rate:"+p.Subject, limit)
	if err != nil {
		s.deps.Logger.WarnContext(c.UserContext(), "rate limiter unavailable; request allowed", logattr.Error, err)
		return c.Next()
	}
	c.Set("X-RateLimit-Remaining", strconv.Itoa(res.Remaining))
	if res.Allowed == 0 {
		secs := int(res.RetryAfter.Seconds()) + 1
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
		return errorf(fiber.StatusTooManyRequests, "rate limit of %d requests per minute exceeded; retry in %d s", s.cfg.RateLimit, secs)
	}
	return c.Next()
}
