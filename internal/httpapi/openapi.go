package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDocument is the OpenAPI 3.1 description of every route. It is
// written by hand, not generated; openapi_test.go holds it to the routes,
// the request and response types and the statuses the handler tests see.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPI serves the OpenAPI document.
func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDocument)
}
