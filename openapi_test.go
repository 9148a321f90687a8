package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/go-seckill/seckill/internal/harness"
)

// Every operation of /openapi.json, sent to a running instance with its
// documented examples (the ids of goods, templates, orders and coupons
// made first), is a valid request by the document and gets an answer the
// document lists, valid against its schema.
func TestOpenAPIExamplesAnsweredAsDocumented(t *testing.T) {
	t.Parallel()
	e := harness.NewEnv(t)
	in := e.Start(t)

	var raw json.RawMessage
	if code := in.Call(t, "GET", "/openapi.json", nil, &raw); code != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d", code)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("/openapi.json is not valid: %v", err)
	}
	for _, typ := range []string{"text/html", "text/css", "text/javascript"} {
		openapi3filter.RegisterBodyDecoder(typ, func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
			b, err := io.ReadAll(r)
			return string(b), err
		})
	}

	// What the examples' ids stand for.
	goods := in.CreateGoods(t, 1000)
	tpl := createTemplate(t, in, map[string]any{"name": "5 off", "type": "fixed", "value": 500, "stock": 100})
	code, order := in.Order(t, "V2", 1, goods.ID, 1)
	if code != http.StatusCreated {
		t.Fatalf("order: %d", code)
	}
	code, cp := claim(t, in, 1, tpl.ID, "")
	if code != http.StatusCreated {
		t.Fatalf("claim: %d", code)
	}
	ids := map[string]string{"/goods/": strconv.FormatInt(goods.ID, 10), "/admin/goods/": strconv.FormatInt(goods.ID, 10),
		"/orders/": strconv.FormatInt(order.ID, 10), "/coupon-templates/": strconv.FormatInt(tpl.ID, 10),
		"/admin/coupon-templates/": strconv.FormatInt(tpl.ID, 10), "/coupons/": cp.CouponID, "/users/": "1"}
	bodyIDs := map[string]any{"goods_id": goods.ID, "template_id": tpl.ID, "id": goods.ID, "order_id": strconv.FormatInt(order.ID, 10)}

	paths := doc.Paths.InMatchingOrder()
	slices.Sort(paths)
	calls := 0
	for _, path := range paths {
		item := doc.Paths.Value(path)
		for method, op := range item.Operations() {
			for _, body := range examples(op) {
				calls++
				t.Run(method+" "+path, func(t *testing.T) {
					call(t, in, doc, path, item, method, op, body, ids, bodyIDs)
				})
			}
		}
	}
	if calls < 25 {
		t.Errorf("only %d calls made", calls)
	}
}

// examples are an operation's request body examples; one nil body for an
// operation that takes none.
func examples(op *openapi3.Operation) []map[string]any {
	if op.RequestBody == nil {
		return []map[string]any{nil}
	}
	media := op.RequestBody.Value.Content.Get("application/json")
	var out []map[string]any
	if m, ok := media.Example.(map[string]any); ok {
		out = append(out, m)
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range media.Examples {
			if !yield(k) {
				return
			}
		}
	}) {
		out = append(out, media.Examples[name].Value.Value.(map[string]any))
	}
	return out
}

func call(t *testing.T, in *harness.Instance, doc *openapi3.T, path string, item *openapi3.PathItem, method string, op *openapi3.Operation,
	example map[string]any, ids map[string]string, bodyIDs map[string]any) {
	// The path with its parameters: the ids made, or the examples.
	params := map[string]string{}
	concrete := path
	for _, p := range append(item.Parameters, op.Parameters...) {
		if p.Value.In != "path" {
			continue
		}
		v := fmt.Sprint(p.Value.Example)
		for prefix, id := range ids {
			if strings.HasPrefix(path, prefix+"{") {
				v = id
			}
		}
		if p.Value.Schema.Value.Type.Is("string") {
			v = fmt.Sprint(p.Value.Example)
		}
		params[p.Value.Name] = v
		concrete = strings.Replace(concrete, "{"+p.Value.Name+"}", v, 1)
	}
	// Required query parameters: their examples.
	var query []string
	for _, p := range append(item.Parameters, op.Parameters...) {
		if p.Value.In == "query" && p.Value.Required {
			query = append(query, p.Value.Name+"="+url.QueryEscape(fmt.Sprint(p.Value.Example)))
		}
	}
	if len(query) > 0 {
		concrete += "?" + strings.Join(query, "&")
	}
	var body []byte
	if example != nil {
		b := map[string]any{}
		for k, v := range example {
			b[k] = v
			if id, ok := bodyIDs[k]; ok {
				b[k] = id
			}
		}
		body, _ = json.Marshal(b)
	}
	req, err := http.NewRequest(method, in.Base+concrete, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+in.Token)
	route := &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}
	u, _ := url.Parse(in.Base + concrete)
	vreq := req.Clone(context.Background())
	vreq.URL = u
	if body != nil {
		vreq.Body = io.NopCloser(bytes.NewReader(body))
	}
	input := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateRequest(context.Background(), input); err != nil {
		t.Errorf("the documented example is not a valid request: %v", err)
	}
	resp, err := in.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if op.Responses.Status(resp.StatusCode) == nil {
		t.Errorf("answered %d, which is not documented: %.200s", resp.StatusCode, answer)
		return
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true}
	if method == http.MethodHead {
		opts.ExcludeResponseBody = true
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: input, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(answer)), Options: opts}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("the %d answer is not as documented: %v\n%.300s", resp.StatusCode, err, answer)
	}
	t.Logf("%s %s: %d", method, concrete, resp.StatusCode)
}
