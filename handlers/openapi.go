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
	accept := doc.Paths.Value("/seckill")
	if accept == nil || accept.Post == nil {
		return nil, fmt.Errorf("openapi.yaml: no POST /seckill to describe the async versions with")
	}
	for _, v := range service.Versions() {
		op := *order.Post
		if v.AsyncAccept {
			op = *accept.Post
			op.Summary = "async accept through version " + v.Name + ", as POST /seckill"
		}
		op.OperationID = "order" + v.Name
		op.Summary = "place an order through version " + v.Name
		if v.Limits {
			limited(doc, &op)
		}
		doc.Paths.Set("/order"+v.Name, &openapi3.PathItem{Post: &op})
	}
	return doc, nil
})

// limited adds to op, a copy of /order's, what the edge's limits add: the
// captcha headers and their refusals.
func limited(doc *openapi3.T, op *openapi3.Operation) {
	op.Summary += ", behind the edge's limits (per address, per user, the stock gate)"
	op.Parameters = append(append(openapi3.Parameters{}, op.Parameters...),
		&openapi3.ParameterRef{Ref: "#/components/parameters/captchaId", Value: doc.Components.Parameters["captchaId"].Value},
		&openapi3.ParameterRef{Ref: "#/components/parameters/captchaSolution", Value: doc.Components.Parameters["captchaSolution"].Value})
	responses := openapi3.NewResponses()
	for code, r := range op.Responses.Map() {
		responses.Set(code, r)
	}
	for code, name := range map[string]string{"403": "OrderedEarly", "429": "Limited"} {
		responses.Set(code, &openapi3.ResponseRef{Ref: "#/components/responses/" + name, Value: doc.Components.Responses[name].Value})
	}
	op.Responses = responses
}

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
