package handlers

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"

	"github.com/go-seckill/seckill/service"
)

// openapiYAML is the API's one description. The order routes of each
// version (/orderV1...) are made from /order's at load, from the list of
// versions, so that a version added to the list is described too.
//
//go:embed openapi.yaml
var openapiYAML []byte

var openapiDoc = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openapiYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	order := doc.Paths.Value("/order")
	if order == nil || order.Post == nil {
		return nil, fmt.Errorf("openapi.yaml: no POST /order to describe the versions with")
	}
	for _, v := range service.VersionNames() {
		op := *order.Post
		op.OperationID = "order" + v
		op.Summary = "place an order through version " + v
		doc.Paths.Set("/order"+v, &openapi3.PathItem{Post: &op})
	}
	return doc, nil
})

// OpenAPI is the API's description, OpenAPI 3.
func OpenAPI() (*openapi3.T, error) { return openapiDoc() }

var openapiJSON = sync.OnceValues(func() ([]byte, error) {
	doc, err := OpenAPI()
	if err != nil {
		return nil, err
	}
	return json.Marshal(doc)
})

// serveOpenAPI answers GET /openapi.json.
func serveOpenAPI(c *gin.Context) {
	b, err := openapiJSON()
	if err != nil {
		writeErrorCode(c, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	c.Data(http.StatusOK, "application/json", b)
}
