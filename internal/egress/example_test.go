package egress_test

import (
	"context"
	"fmt"

	"github.com/geoexport/exporter/internal/egress"
)

func ExamplePolicy_CheckURL() {
	p, err := egress.New(egress.Config{Allow: "callbacks.internal, 10.1.0.0/16"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	for _, raw := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://2130706433:8080/",
		"http://[::ffff:10.0.0.5]/hook?token=secret",
		"https://93.184.216.34/hook?token=secret",
		"http://10.1.2.3:9000/hook",
		"http://callbacks.internal/hook",
	} {
		fmt.Println(p.CheckURL(ctx, raw))
	}
	// Output:
	// egress: destination not allowed: http://169.254.169.254 is a cloud metadata address
	// egress: destination not allowed: http://2130706433:8080 is 127.0.0.1 in a non-standard notation
	// egress: destination not allowed: http://[::ffff:10.0.0.5] is an IPv4-mapped form of 10.0.0.5, a private address
	// <nil>
	// <nil>
	// <nil>
}
