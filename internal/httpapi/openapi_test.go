package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// The OpenAPI document is written by hand; these tests hold it to the code:
// the routes, the request and response types, the problem codes, which
// routes need a key or take an Idempotency-Key, and (in TestMain, see
// servedStatuses) every status the handler tests saw a route answer.

// openAPIDoc is as much of an OpenAPI 3.1 document as the tests read.
type openAPIDoc struct {
	OpenAPI  string                                `json:"openapi"`
	Security []map[string][]string                 `json:"security"`
	Paths    map[string]map[string]json.RawMessage `json:"paths"`

	Components struct {
		Schemas         map[string]*oaSchema   `json:"schemas"`
		Responses       map[string]oaResponse  `json:"responses"`
		Parameters      map[string]oaParameter `json:"parameters"`
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

type oaOperation struct {
	OperationID string        `json:"operationId"`
	Parameters  []oaParameter `json:"parameters"`
	RequestBody *struct {
		Required bool                   `json:"required"`
		Content  map[string]oaMediaType `json:"content"`
	} `json:"requestBody"`
	Responses map[string]oaResponse `json:"responses"`
	// Security is nil when the operation takes the document's default.
	Security *[]map[string][]string `json:"security"`
}

type oaParameter struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type oaResponse struct {
	Ref     string                 `json:"$ref"`
	Content map[string]oaMediaType `json:"content"`
}

type oaMediaType struct {
	Schema *oaSchema `json:"schema"`
}

type oaSchema struct {
	Ref                  string               `json:"$ref"`
	Type                 json.RawMessage      `json:"type"`
	Properties           map[string]*oaSchema `json:"properties"`
	Required             []string             `json:"required"`
	AdditionalProperties json.RawMessage      `json:"additionalProperties"`
	Items                *oaSchema            `json:"items"`
	Enum                 []any                `json:"enum"`
	AnyOf                []*oaSchema          `json:"anyOf"`
	Pattern              string               `json:"pattern"`
}

// types returns the JSON types the schema allows; nil when it says none.
func (s *oaSchema) types() []string {
	if len(s.Type) == 0 {
		return nil
	}
	var one string
	if json.Unmarshal(s.Type, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(s.Type, &many)
	return many
}

// openAPIOp is one documented operation.
type openAPIOp struct {
	method, path string
	op           oaOperation
	params       []oaParameter // the path item's and the operation's, resolved
}

func (o openAPIOp) String() string { return strings.ToUpper(o.method) + " " + o.path }

// loadOpenAPI parses the embedded document.
func loadOpenAPI() (*openAPIDoc, error) {
	var doc openAPIDoc
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		return nil, fmt.Errorf("error parsing openapi.json: %w", err)
	}
	return &doc, nil
}

func requireOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	doc, err := loadOpenAPI()
	require.NoError(t, err)
	return doc
}

// operations lists every documented operation.
func (d *openAPIDoc) operations() ([]openAPIOp, error) {
	var out []openAPIOp
	for _, path := range slices.Sorted(maps.Keys(d.Paths)) {
		item := d.Paths[path]
		var shared []oaParameter
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				return nil, fmt.Errorf("%s parameters: %w", path, err)
			}
		}
		for _, method := range slices.Sorted(maps.Keys(item)) {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
			default:
				continue
			}
			var op oaOperation
			if err := json.Unmarshal(item[method], &op); err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, path, err)
			}
			var params []oaParameter
			for _, p := range slices.Concat(shared, op.Parameters) {
				params = append(params, d.parameter(p))
			}
			out = append(out, openAPIOp{method: method, path: path, op: op, params: params})
		}
	}
	return out, nil
}

func (d *openAPIDoc) parameter(p oaParameter) oaParameter {
	if name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
		return d.Components.Parameters[name]
	}
	return p
}

func (d *openAPIDoc) response(r oaResponse) oaResponse {
	if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
		return d.Components.Responses[name]
	}
	return r
}

// schema follows $ref to the schema it names.
func (d *openAPIDoc) schema(s *oaSchema) *oaSchema {
	for s != nil && s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/")
		if !ok {
			return nil
		}
		s = d.Components.Schemas[name]
	}
	return s
}

var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// openAPIPath turns an Echo route ("/v1/payments/:id") into an OpenAPI path
// ("/v1/payments/{id}").
func openAPIPath(route string) string {
	return echoParam.ReplaceAllString(route, "{$1}")
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	b := setup(t).as("", "") // no API key

	rec := b.do(t, http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.Equal(t, openAPIDocument, rec.Body.Bytes())

	doc := requireOpenAPI(t)
	require.Equal(t, "3.1.0", doc.OpenAPI)
	bearer, ok := doc.Components.SecuritySchemes["bearerAuth"]
	require.True(t, ok, "the bearer security scheme")
	require.Equal(t, "http", bearer.Type)
	require.Equal(t, "bearer", bearer.Scheme)
	require.Equal(t, []map[string][]string{{"bearerAuth": {}}}, doc.Security, "a key is needed unless an operation says otherwise")
}

// TestOpenAPIRoutes: every route is documented, and every documented
// operation is a route.
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := New(b.cfg)

	var routes []string
	for _, r := range s.echo.Routes() {
		if r.Path == consolePath || strings.HasPrefix(r.Path, consolePath+"/") {
			// The console is HTML pages for people (internal/console, README),
			// not part of the API this document describes.
			continue
		}
		routes = append(routes, r.Method+" "+openAPIPath(r.Path))
	}
	slices.Sort(routes)
	require.Contains(t, routes, "GET /metrics", "the test server serves metrics, as the binary does")

	ops, err := requireOpenAPI(t).operations()
	require.NoError(t, err)
	var documented []string
	for _, o := range ops {
		documented = append(documented, o.String())
	}
	slices.Sort(documented)
	require.Equal(t, routes, documented)
}

// TestOpenAPIRequestBodies: each documented request body is exactly the
// members its request type decodes (decodeJSON refuses any other, hence
// additionalProperties: false), and each operation that reads a JSON body
// documents one.
func TestOpenAPIRequestBodies(t *testing.T) {
	t.Parallel()
	doc := requireOpenAPI(t)
	ops, err := doc.operations()
	require.NoError(t, err)

	strict := map[string]any{
		"POST /v1/payments":              createPaymentRequest{},
		"POST /v1/payments/{id}/confirm": confirmPaymentRequest{},
		"POST /v1/payments/{id}/cancel":  cancelPaymentRequest{},
		"POST /v1/webhook-endpoints":     createWebhookEndpointRequest{},

		"POST /v1/ops/payments/{id}/lookup":         opsActionRequest{},
		"POST /v1/ops/payments/{id}/retry":          opsActionRequest{},
		"POST /v1/ops/payments/{id}/resolve":        opsActionRequest{},
		"POST /v1/ops/payments/{id}/acknowledge":    opsActionRequest{},
		"POST /v1/ops/payments/{id}/resend-cancel":  resendCancelRequest{},
		"POST /v1/ops/payments/{id}/settle-cancel":  settleCancelRequest{},
		"POST /v1/ops/payments/{id}/refund-account": refundAccountOpsRequest{},
		"POST /v1/ops/jobs/{id}/retry":              opsActionRequest{},
	}
	const webhook = "POST /v1/webhooks/toss"
	const portOneWebhook = "POST /v1/webhooks/portone"

	var withBody []string
	for _, o := range ops {
		if o.op.RequestBody == nil {
			continue
		}
		withBody = append(withBody, o.String())
		require.True(t, o.op.RequestBody.Required, "%s: the body is required", o)
		media, ok := o.op.RequestBody.Content["application/json"]
		require.True(t, ok, "%s: a JSON body", o)
		s := doc.schema(media.Schema)
		require.NotNil(t, s, "%s: body schema", o)

		if o.String() == webhook {
			// Read leniently (parseTossEvent): unknown members are ignored.
			require.Equal(t, jsonFieldNames(wireTossEvent{}), keySet(s.Properties), webhook)
			require.NotEqual(t, "false", string(s.AdditionalProperties), "%s: unknown members are accepted", webhook)
			data, ok := reflect.TypeFor[wireTossEvent]().FieldByName("Data")
			require.True(t, ok)
			require.Equal(t, jsonFieldNames(reflect.New(data.Type.Elem()).Interface()),
				keySet(doc.schema(s.Properties["data"]).Properties), "%s data", webhook)
			continue
		}
		if o.String() == portOneWebhook {
			// Read leniently too: PortOne adds types and members without notice.
			require.Equal(t, jsonFieldNames(portOneEvent{}), keySet(s.Properties), portOneWebhook)
			require.NotEqual(t, "false", string(s.AdditionalProperties), "%s: unknown members are accepted", portOneWebhook)
			data, ok := reflect.TypeFor[portOneEvent]().FieldByName("Data")
			require.True(t, ok)
			require.Equal(t, jsonFieldNames(reflect.New(data.Type.Elem()).Interface()),
				keySet(doc.schema(s.Properties["data"]).Properties), "%s data", portOneWebhook)
			continue
		}
		req, ok := strict[o.String()]
		require.True(t, ok, "%s documents a body no request type here decodes", o)
		require.Equal(t, jsonFieldNames(req), keySet(s.Properties), "%s: the members %T decodes", o, req)
		require.Equal(t, "false", string(s.AdditionalProperties), "%s: unknown members are refused (unknown_field)", o)
		for _, name := range s.Required {
			require.Contains(t, s.Properties, name, "%s: required %s", o, name)
		}
	}
	slices.Sort(withBody)
	require.Equal(t, slices.Sorted(slices.Values(append(slices.Collect(maps.Keys(strict)), webhook, portOneWebhook))), withBody)
}

// TestOpenAPIResponseSchemas: each response schema's properties are exactly
// the members the response types emit, all of them filled in; its required
// members are those emitted even when there is nothing to show; and each
// value's JSON type is one the schema allows.
func TestOpenAPIResponseSchemas(t *testing.T) {
	t.Parallel()
	doc := requireOpenAPI(t)
	schema := func(name string) *oaSchema {
		s, ok := doc.Components.Schemas[name]
		require.True(t, ok, "schema %s", name)
		return s
	}

	full := filled[payment.Payment]()
	for name, tt := range map[string]struct {
		full    []any // every member set: each must be a property, and the other way round
		minimal any   // nothing set: what is emitted must be the required members
	}{
		"Payment": {
			full:    []any{filled[paymentResponse](), toPaymentResponse(full)},
			minimal: toPaymentResponse(payment.Payment{}),
		},
		"Cancel": {
			full:    []any{filled[cancelResponse](), toCancelResponse(full.Cancels[0])},
			minimal: toCancelResponse(payment.Cancel{}),
		},
		"Attempt": {
			full:    []any{filled[attemptResponse](), toAttemptResponse(full.Attempts[0])},
			minimal: toAttemptResponse(payment.Attempt{}),
		},
		"AttemptList": {
			full:    []any{attemptListResponse{Attempts: []attemptResponse{filled[attemptResponse]()}, AttemptCount: 3, NextBefore: new(int64(7))}},
			minimal: attemptListResponse{Attempts: []attemptResponse{}},
		},
		"Failure": {
			full:    []any{filled[failureResponse]()},
			minimal: failureResponse{},
		},
		"PaymentSummary": {
			full:    []any{filled[paymentSummaryResponse](), toPaymentSummaryResponse(full)},
			minimal: toPaymentSummaryResponse(payment.Payment{}),
		},
		"PaymentList": {
			full:    []any{filled[paymentListResponse]()},
			minimal: paymentListResponse{Payments: []paymentSummaryResponse{}},
		},
		"Problem": {
			full:    []any{filled[problem]()},
			minimal: problem{},
		},
		"WebhookEndpoint": {
			full:    []any{filled[webhookEndpointResponse]()},
			minimal: toWebhookEndpointResponse(webhook.Endpoint{}),
		},
		"WebhookEndpointList": {
			full:    []any{filled[webhookEndpointListResponse]()},
			minimal: webhookEndpointListResponse{Endpoints: []webhookEndpointResponse{}},
		},
		"WebhookDelivery": {
			full:    []any{filledDelivery(t)},
			minimal: toWebhookDeliveryResponse(webhook.Delivery{}),
		},
		"WebhookDeliveryList": {
			full:    []any{webhookDeliveryListResponse{Deliveries: []webhookDeliveryResponse{filledDelivery(t)}}},
			minimal: webhookDeliveryListResponse{Deliveries: []webhookDeliveryResponse{}},
		},
		"OperatorAction": {
			full:    []any{filled[operatorActionResponse](), toOperatorActionResponse(filled[payment.OperatorAction]())},
			minimal: toOperatorActionResponse(payment.OperatorAction{}),
		},
		"OperatorActionList": {
			full:    []any{filled[operatorActionListResponse]()},
			minimal: operatorActionListResponse{Actions: []operatorActionResponse{}},
		},
		"BooksReport": {
			full:    []any{filled[booksReportResponse](), booksReportResponse{Runs: []booksRunResponse{}, Differences: []booksDifferenceResponse{filledBooksDifference()}}},
			minimal: booksReportResponse{Runs: []booksRunResponse{}, Differences: []booksDifferenceResponse{}},
		},
		"BooksRun": {
			full:    []any{filled[booksRunResponse](), toBooksRunResponse(filled[store.BooksRun]())},
			minimal: toBooksRunResponse(store.BooksRun{}),
		},
		"BooksDifference": {
			full:    []any{filled[booksDifferenceResponse](), filledBooksDifference()},
			minimal: toBooksDifferenceResponse(store.BooksDifference{}),
		},
		"StatusResponse":  {full: []any{statusResponse{Status: "ok"}}, minimal: statusResponse{}},
		"WebhookResponse": {full: []any{webhookResponse{Status: "ok"}}, minimal: webhookResponse{}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := schema(name)
			for _, v := range tt.full {
				requireMatchesSchema(t, doc, s, jsonValue(t, v), true, name)
			}
			min := jsonValue(t, tt.minimal)
			requireMatchesSchema(t, doc, s, min, false, name)
			obj, ok := min.(map[string]any)
			require.True(t, ok)
			require.Equal(t, keySet(obj), setOf(s.Required), "%s: required members are those always emitted", name)
		})
	}
}

// filledBooksDifference is a difference with every member set, its
// gateway record one transaction with every member set.
func filledBooksDifference() booksDifferenceResponse {
	d := filled[store.BooksDifference]()
	d.GatewayRecord = []byte(`[{"paymentKey":"pk","orderId":"order-1","transactionKey":"tx","kind":"approval","status":"DONE","method":"카드","currency":"KRW","amount":1000,"at":"2026-11-21T12:00:00Z"}]`)
	return toBooksDifferenceResponse(d)
}

// filledDelivery is a delivery with every member set, its payload the event
// of a payment with every field set.
func filledDelivery(t *testing.T) webhookDeliveryResponse {
	t.Helper()
	body, err := webhook.NewEvent(payment.StatusConfirming, filled[payment.Payment](), time.Now()).Encode()
	require.NoError(t, err)
	d := filled[webhook.Delivery]()
	d.Payload = body
	return toWebhookDeliveryResponse(d)
}

// requireMatchesSchema checks that v (decoded JSON) has only properties s
// documents (all of them when exact), recursively, with JSON types s allows.
func requireMatchesSchema(t *testing.T, doc *openAPIDoc, s *oaSchema, v any, exact bool, where string) {
	t.Helper()
	s = doc.schema(s)
	require.NotNil(t, s, where)
	if types := s.types(); types != nil {
		typ := jsonTypeOf(v)
		if typ == "integer" && slices.Contains(types, "number") {
			typ = "number" // JSON Schema's integers are numbers
		}
		require.Contains(t, types, typ, "%s: JSON type", where)
	}
	switch v := v.(type) {
	case map[string]any:
		if exact {
			require.Equal(t, keySet(s.Properties), keySet(v), "%s: members", where)
		}
		for k, sub := range v {
			require.Contains(t, s.Properties, k, "%s: member %s", where, k)
			requireMatchesSchema(t, doc, s.Properties[k], sub, exact, where+"."+k)
		}
	case []any:
		require.NotNil(t, s.Items, where)
		for i, sub := range v {
			requireMatchesSchema(t, doc, s.Items, sub, exact, fmt.Sprintf("%s[%d]", where, i))
		}
	}
}

func jsonTypeOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case json.Number:
		if _, err := strconv.ParseInt(v.String(), 10, 64); err == nil {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// jsonValue marshals v and decodes it back as generic JSON, numbers kept
// apart as integers or not.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var out any
	require.NoError(t, dec.Decode(&out))
	return out
}

// filled returns a T with every exported field set, recursively: strings
// non-empty, numbers non-zero, pointers allocated, slices one element long.
// Marshaled, it shows every member the type can emit, omitempty ones too.
func filled[T any]() T {
	var v T
	fill(reflect.ValueOf(&v).Elem())
	return v
}

func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Bool:
		v.SetBool(true)
	}
}

func keySet[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func setOf(names []string) map[string]bool {
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out
}

// TestOpenAPIProblems: every problem code the API can send is in the
// document's enum and no other, and every error response is a problem.
func TestOpenAPIProblems(t *testing.T) {
	t.Parallel()
	doc := requireOpenAPI(t)

	code := doc.schema(doc.Components.Schemas["ProblemCode"])
	require.NotNil(t, code)
	require.Len(t, code.AnyOf, 2, "the fixed codes, and the http_<status> Echo's own 4xx become")
	var enum []string
	for _, v := range code.AnyOf[0].Enum {
		enum = append(enum, v.(string))
	}
	require.ElementsMatch(t, slices.Collect(maps.Keys(problemTitles)), enum)
	_, echoCode, _, _ := classifyEcho(echo.NewHTTPError(http.StatusTooManyRequests))
	require.Regexp(t, code.AnyOf[1].Pattern, echoCode)

	ops, err := doc.operations()
	require.NoError(t, err)
	for _, o := range ops {
		require.NotEmpty(t, o.op.Responses, o.String())
		for status, r := range o.op.Responses {
			r = doc.response(r)
			if status[0] != '4' && status[0] != '5' {
				continue
			}
			media, ok := r.Content[problemContentType]
			require.True(t, ok, "%s %s: an error answers with %s", o, status, problemContentType)
			require.Equal(t, "#/components/schemas/Problem", media.Schema.Ref, "%s %s", o, status)
		}
	}
}

// TestOpenAPIStatuses: the calls the checkout makes document at least the
// answers the README promises; TestMain checks the rest against what the
// handler tests saw.
func TestOpenAPIStatuses(t *testing.T) {
	t.Parallel()
	ops, err := requireOpenAPI(t).operations()
	require.NoError(t, err)
	want := map[string][]string{
		"POST /v1/payments":              {"201", "200", "400", "401", "409", "413", "415", "422", "500"},
		"POST /v1/payments/{id}/confirm": {"202", "400", "401", "404", "409", "413", "415", "422", "500"},
		"POST /v1/payments/{id}/cancel":  {"200", "202", "400", "401", "404", "409", "413", "415", "422", "500"},
		"GET /v1/payments/{id}":          {"200", "400", "401", "404", "429"},
		"GET /v1/payments":               {"200", "400", "401", "404"},
		"GET /v1/payments/attention":     {"200", "400", "401"},
		"POST /v1/webhooks/toss":         {"200", "400", "413"},
		"GET /readyz":                    {"200", "503"},

		"POST /v1/ops/payments/{id}/lookup":        {"202", "400", "401", "403", "404", "409"},
		"POST /v1/ops/payments/{id}/retry":         {"202", "400", "401", "403", "404", "409"},
		"POST /v1/ops/payments/{id}/resend-cancel": {"202", "400", "401", "403", "404", "409", "422"},
		"POST /v1/ops/payments/{id}/resolve":       {"202", "400", "401", "403", "404", "409"},
		"POST /v1/ops/payments/{id}/acknowledge":   {"200", "400", "401", "403", "404", "409"},
		"POST /v1/ops/jobs/{id}/retry":             {"202", "400", "401", "403", "404", "409"},
		"GET /v1/ops/payments/{id}/actions":        {"200", "401", "403", "404"},
	}
	seen := 0
	for _, o := range ops {
		statuses, ok := want[o.String()]
		if !ok {
			continue
		}
		seen++
		for _, s := range statuses {
			require.Contains(t, o.op.Responses, s, "%s documents %s", o, s)
		}
	}
	require.Equal(t, len(want), seen)
}

// TestOpenAPISecurity: an operation documented as needing a key answers 401
// without one, and one documented as open does not.
func TestOpenAPISecurity(t *testing.T) {
	t.Parallel()
	b := setup(t).as("", "")
	doc := requireOpenAPI(t)
	ops, err := doc.operations()
	require.NoError(t, err)

	for _, o := range ops {
		secured := len(doc.Security) > 0
		if o.op.Security != nil {
			secured = len(*o.op.Security) > 0
		}
		rec := b.do(t, strings.ToUpper(o.method), examplePath(o.path), exampleBody(o), "Content-Type", "application/json")
		if secured {
			requireProblem(t, rec, http.StatusUnauthorized, codeUnauthorized)
			require.Contains(t, o.op.Responses, "401", "%s documents its 401", o)
		} else if o.String() == "POST /v1/webhooks/portone" {
			// Open to callers without a key, but signed: an unsigned call
			// is refused for its signature, never for an API key.
			requireProblem(t, rec, http.StatusUnauthorized, codeInvalidSignature)
			require.Contains(t, o.op.Responses, "401", o.String())
		} else {
			require.NotEqual(t, http.StatusUnauthorized, rec.Code, "%s is documented as open: %s", o, rec.Body.String())
			require.NotContains(t, o.op.Responses, "401", o.String())
		}
	}
}

// TestOpenAPIIdempotencyKey: the operations documenting the Idempotency-Key
// header are exactly those that read it (a malformed one is refused).
func TestOpenAPIIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ops, err := requireOpenAPI(t).operations()
	require.NoError(t, err)

	malformed := strings.Repeat("k", maxIdempotencyKeyLen+1)
	for _, o := range ops {
		documented := slices.ContainsFunc(o.params, func(p oaParameter) bool {
			return p.In == "header" && p.Name == headerIdempotencyKey
		})
		rec := b.do(t, strings.ToUpper(o.method), examplePath(o.path), exampleBody(o),
			"Content-Type", "application/json", headerIdempotencyKey, malformed)
		refused := rec.Code == http.StatusBadRequest && strings.Contains(rec.Body.String(), headerIdempotencyKey)
		require.Equal(t, documented, refused, "%s: documents Idempotency-Key: %v; answer: %d %s", o, documented, rec.Code, rec.Body.String())
	}
}

// examplePath fills a documented path's parameters.
func examplePath(path string) string {
	path = strings.ReplaceAll(path, "{deliveryId}", uuid.NewString())
	return strings.ReplaceAll(path, "{id}", uuid.NewString())
}

// exampleBody is a body for an operation that takes one: an empty object,
// which every body schema accepts as JSON if not as a request.
func exampleBody(o openAPIOp) string {
	if o.op.RequestBody == nil {
		return ""
	}
	return "{}"
}

// servedStatuses holds the metrics registries of every test server (setup
// adds them), so that TestMain, once every test has run, can check that each
// status a documented operation answered in a test is documented for it.
var servedStatuses statusRecorder

type statusRecorder struct {
	mu   sync.Mutex
	regs []*metrics.Registry
}

func (r *statusRecorder) add(reg *metrics.Registry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.regs = append(r.regs, reg)
}

// served returns "METHOD /path status" for each request the test servers
// counted, paths in OpenAPI form.
func (r *statusRecorder) served() (map[string][3]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][3]string{}
	for _, reg := range r.regs {
		families, err := reg.Gatherer().Gather()
		if err != nil {
			return nil, err
		}
		for _, f := range families {
			if f.GetName() != "payment_outbox_http_requests_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				k := [3]string{labels["method"], openAPIPath(labels["route"]), labels["status"]}
				out[strings.Join(k[:], " ")] = k
			}
		}
	}
	return out, nil
}

// checkServedStatusesDocumented reports on w each status a documented
// operation answered in the tests without the document saying it can, and
// returns whether there was none. Requests to no route, or with a method the
// path does not support, are not operations and are skipped.
func checkServedStatusesDocumented(w io.Writer) bool {
	doc, err := loadOpenAPI()
	if err != nil {
		fmt.Fprintln(w, "openapi:", err)
		return false
	}
	ops, err := doc.operations()
	if err != nil {
		fmt.Fprintln(w, "openapi:", err)
		return false
	}
	byName := map[string]openAPIOp{}
	for _, o := range ops {
		byName[o.String()] = o
	}
	served, err := servedStatuses.served()
	if err != nil {
		fmt.Fprintln(w, "openapi: error gathering the test servers' metrics:", err)
		return false
	}
	ok := true
	for _, name := range slices.Sorted(maps.Keys(served)) {
		k := served[name]
		o, found := byName[k[0]+" "+k[1]]
		if !found {
			continue
		}
		if _, documented := o.op.Responses[k[2]]; !documented {
			fmt.Fprintf(w, "openapi: %s answered %s in a test; document it in internal/httpapi/openapi.json\n", o, k[2])
			ok = false
		}
	}
	return ok
}
