package auth_test

import (
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/geoexport/exporter/internal/auth"
)

// A token minted with a key verifies with the matching configuration; the
// principal may then be checked for a role.
func Example() {
	secret := []byte("an example secret of at least 32 bytes")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	key, err := auth.NewHS256Key(secret)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := auth.Mint(key, auth.MintClaims{Subject: "alice", Role: "client", TTL: time.Hour, Now: now})
	if err != nil {
		log.Fatal(err)
	}

	v, err := auth.New(auth.Config{
		HS256Secret: secret, RoleClaim: "role", ClientRole: "client", OperatorRole: "operator",
		Now: func() time.Time { return now.Add(time.Minute) },
	})
	if err != nil {
		log.Fatal(err)
	}
	p, err := v.Verify(tok)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Subject, p.Roles, p.Operator())
	fmt.Println(v.Authorize(p, v.ClientRole()))

	err = v.Authorize(p, v.OperatorRole())
	var aerr *auth.Error
	if errors.As(err, &aerr) {
		fmt.Println(aerr.Kind, aerr.Code, aerr.Message)
	}
	// Output:
	// alice [client] false
	// <nil>
	// forbidden insufficient_scope token lacks role operator
}
