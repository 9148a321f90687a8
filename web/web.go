// Package web holds the shopper and admin pages, embedded in the binary.
// They call the JSON API only and load nothing from the internet.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Files are the pages and their assets, rooted at static/.
func Files() fs.FS {
	f, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return f
}
