package worker

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/geoexport/exporter/gpkg"
	"github.com/geoexport/exporter/internal/job"
)

// ContentTypeGeoPackage is the media type packages are stored with.
const ContentTypeGeoPackage = "application/geopackage+sqlite3"

// ContentTypeJSON is the media type the metadata JSON beside each
// package is stored with.
const ContentTypeJSON = "application/json"

// packageOptions are the GeoPackage settings of a job's package and of
// its parts, which render creates and merge and finalize assemble alike.
// None is synced by gpkg: a part or package is uploaded and deleted, or
// linked into a local store, which syncs what it keeps; a crash before
// then is repaired by building it again.
func packageOptions(spec job.Spec) gpkg.Options {
	return gpkg.Options{
		NoSync:      true,
		Table:       tableName(spec.Layer.ProductID),
		Identifier:  spec.PackageName,
		Description: fmt.Sprintf("%s %s version %s, zoom 0-%d", spec.Layer.ProductType, spec.Layer.ProductID, spec.Layer.Version, spec.Zoom),
		Extent:      spec.BBox,
	}
}

var notIdent = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// tableName derives the tile table's name from the product id.
func tableName(productID string) string {
	name := strings.Trim(notIdent.ReplaceAllString(productID, "_"), "_")
	if name == "" || name[0] >= '0' && name[0] <= '9' || strings.HasPrefix(strings.ToLower(name), "gpkg_") {
		name = "tiles_" + name
	}
	return strings.TrimSuffix(name, "_")
}
