// Package db embeds the project's SQL migrations so the api binary can apply
// them without files on disk.
package db

import "embed"

// Migrations holds the numbered schema migrations, applied in name order.
//
//go:embed migrations/*.sql
var Migrations embed.FS
