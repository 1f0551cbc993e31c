package job

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMemo(t *testing.T) {
	t.Parallel()
	var c memo[[]string]
	var first, again []string
	if err := c.decode(`["a","b"]`, &first); err != nil {
		t.Fatal(err)
	}
	if err := c.decode(`["a","b"]`, &again); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, again); diff != "" {
		t.Errorf("remembered value mismatch (-want +got):\n%s", diff)
	}
	var bad []string
	if err := c.decode(`["a",`, &bad); err == nil {
		t.Error("decode of malformed JSON succeeded")
	}
	long := `["` + strings.Repeat("x", memoMaxText) + `"]`
	var v []string
	if err := c.decode(long, &v); err != nil || len(v) != 1 {
		t.Fatalf("decode(long text) = %v, %v", v, err)
	}
	if _, ok := c.values.m[long]; ok {
		t.Errorf("a text of %d bytes was remembered, want at most %d", len(long), memoMaxText)
	}
	for i := range 3 * boundedEntries {
		if err := c.decode(fmt.Sprintf(`["%d"]`, i), &v); err != nil || v[0] != fmt.Sprint(i) {
			t.Fatalf("decode(%d) = %v, %v", i, v, err)
		}
	}
	if n := len(c.values.m); n > boundedEntries {
		t.Errorf("memo holds %d texts, want at most %d", n, boundedEntries)
	}
}
