package trigger

import (
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/hibiken/asynqmon"
)

const (
	// monitoringPath is where asynqmon serves its page, its assets and its
	// API (monitoringPath + "/api/...").
	monitoringPath = "/monitoring"
	// monitoringCookie holds an operator's token for asynqmon's own
	// requests: its page fetches monitoringPath/api/... with neither the
	// Authorization header nor the token parameter it was opened with.
	monitoringCookie = "exporter_monitoring_token"
)

// monitoringRoutes mounts asynqmon at /monitoring, every method and the
// whole subtree, for operators. A browser opens /monitoring?token=<token>;
// that request sets monitoringCookie, which authenticates the page's own
// requests after it.
//
// It is mounted with Use, not a route per method and path: the subtree is
// asynqmon's to route, and the OpenAPI document lists only its pages.
func (s *Server) monitoringRoutes() {
	if s.deps.Redis == nil {
		return
	}
	h := asynqmon.New(asynqmon.Options{
		RootPath:          monitoringPath,
		RedisConnOpt:      s.deps.Redis,
		ReadOnly:          !s.cfg.MonitoringWritable,
		PrometheusAddress: s.cfg.PrometheusURL,
	})
	s.closeMonitor = sync.OnceValue(h.Close)
	s.app.Use(monitoringPath,
		monitoringScope,
		monitoringCookieAuth,
		s.deps.Auth.Require(s.deps.Auth.OperatorRole()),
		s.monitoringSession,
		adaptor.HTTPHandler(h),
	)
}

// monitoringScope answers 404 for paths that only start with the same
// letters, such as /monitoringfoo, which fiber's Use prefix also matches.
func monitoringScope(c *fiber.Ctx) error {
	if p := c.Path(); p != monitoringPath && !strings.HasPrefix(p, monitoringPath+"/") {
		return fiber.NewError(fiber.StatusNotFound, "Cannot "+c.Method()+" "+p)
	}
	return c.Next()
}

// monitoringCookieAuth hands the token of monitoringCookie to Require, as
// an Authorization header, when the request carries no token of its own:
// a token in a header or in the token parameter wins over the cookie.
//
// The cookie is SameSite=Strict, so browsers send it only with requests
// that come from this site. A change (any method but GET and HEAD) made
// with it must also come from this very origin, by Sec-Fetch-Site, so a
// page on a sibling host of the same site cannot make one.
func monitoringCookieAuth(c *fiber.Ctx) error {
	tok := c.Cookies(monitoringCookie)
	if tok == "" || hasOwnToken(c) || c.Query("token") != "" {
		return c.Next()
	}
	if site := c.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && !safeMethod(c.Method()) {
		return &AuthError{Status: fiber.StatusForbidden, Message: "a change made with the monitoring cookie must come from the monitoring page"}
	}
	c.Request().Header.Set(fiber.HeaderAuthorization, "Bearer "+tok)
	return c.Next()
}

// monitoringSession runs after Require: when a page was opened with the
// token parameter, and that token was the one Require accepted, it keeps
// the token in monitoringCookie for the page's own requests. The cookie
// lasts as long as the browser session; the token's exp still applies to
// every request that presents it.
func (s *Server) monitoringSession(c *fiber.Ctx) error {
	tok := c.Query("token")
	if c.Method() != fiber.MethodGet || tok == "" || hasOwnToken(c) {
		return c.Next()
	}
	c.Cookie(&fiber.Cookie{
		Name:     monitoringCookie,
		Value:    tok,
		Path:     monitoringPath,
		HTTPOnly: true,
		Secure:   c.Protocol() == "https" || strings.HasPrefix(s.cfg.PublicURL, "https://"),
		SameSite: fiber.CookieSameSiteStrictMode,
	})
	return c.Next()
}

// hasOwnToken reports whether the request carries a token in a header,
// which Require takes before the token parameter and the cookie.
func hasOwnToken(c *fiber.Ctx) bool {
	return c.Get(fiber.HeaderAuthorization) != "" || c.Get("X-Api-Key") != ""
}

func safeMethod(m string) bool { return m == fiber.MethodGet || m == fiber.MethodHead }
