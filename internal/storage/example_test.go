package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/geoexport/exporter/internal/storage"
)

func ExampleLocal() {
	dir, err := os.MkdirTemp("", "storage-example-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	store, err := storage.NewLocal(dir)
	if err != nil {
		log.Fatal(err)
	}
	body := "tiles"
	if err := store.Put(ctx, "packages/demo.gpkg", strings.NewReader(body), int64(len(body)), ""); err != nil {
		log.Fatal(err)
	}

	obj, err := store.Open(ctx, "packages/demo.gpkg")
	if err != nil {
		log.Fatal(err)
	}
	defer obj.Close()
	part := make([]byte, 3)
	if _, err := obj.ReadAt(part, 2); err != nil && !errors.Is(err, io.EOF) {
		log.Fatal(err)
	}
	fmt.Println(obj.Size(), obj.Info().ContentType, string(part))

	_, err = store.Stat(ctx, "packages/missing.gpkg")
	fmt.Println(errors.Is(err, storage.ErrNotFound))
	// Output:
	// 5 application/geopackage+sqlite3 les
	// true
}
