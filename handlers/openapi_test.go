package handlers

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"

	"github.com/go-seckill/seckill/service"
)

// The document is valid OpenAPI 3 (its examples valid against their
// schemas), every route the router serves is documented, and every
// documented operation is served; the order routes follow the list of
// versions.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("the document is not valid: %v", err)
	}
	r := New(Service{}, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxInFlight: 1, MaxBodyBytes: 4096}).(*gin.Engine)
	param := regexp.MustCompile(`[:*]([A-Za-z_]+)`)
	served := map[string]bool{}
	for _, rt := range r.Routes() {
		served[rt.Method+" "+param.ReplaceAllString(rt.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for op := range served {
		if !documented[op] {
			t.Errorf("%s is served but not documented", op)
		}
	}
	for op := range documented {
		if !served[op] {
			t.Errorf("%s is documented but not served", op)
		}
	}
	for _, v := range append(service.VersionNames(), "") {
		if op := "POST /order" + v; !served[op] || !documented[op] {
			t.Errorf("%s: served %v, documented %v", op, served[op], documented[op])
		}
	}
	var ids []string
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.OperationID == "" || slices.Contains(ids, op.OperationID) {
				t.Errorf("operation id %q missing or repeated", op.OperationID)
			}
			ids = append(ids, op.OperationID)
		}
	}
	if b, err := openapiJSON(); err != nil || !strings.Contains(string(b), `"openapi":"3.0.3"`) {
		t.Errorf("/openapi.json: %v %.80s", err, b)
	}
}
