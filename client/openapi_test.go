package client

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The client is written by hand against the api's OpenAPI document
// (internal/httpapi/openapi.json, which the api's own tests hold to its
// code). These tests hold the client to the document, so a change of the
// API that the client does not follow fails here.

type oaDoc struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]*oaSchema `json:"schemas"`
	} `json:"components"`
}

type oaSchema struct {
	Ref        string               `json:"$ref"`
	Properties map[string]*oaSchema `json:"properties"`
	Items      *oaSchema            `json:"items"`
	AnyOf      []*oaSchema          `json:"anyOf"`
	Enum       []any                `json:"enum"`
}

func loadDoc(t *testing.T) *oaDoc {
	t.Helper()
	raw, err := os.ReadFile("../internal/httpapi/openapi.json")
	require.NoError(t, err)
	var d oaDoc
	require.NoError(t, json.Unmarshal(raw, &d))
	return &d
}

func (d *oaDoc) schema(t *testing.T, name string) *oaSchema {
	t.Helper()
	s, ok := d.Components.Schemas[name]
	require.True(t, ok, "schema %s", name)
	return s
}

// notForCheckouts are documented operations the client leaves out on
// purpose: operators' and the gateway's calls, probes and the document.
var notForCheckouts = []string{
	"GET /v1/payments/attention",
	"POST /v1/webhooks/toss",
	"POST /v1/webhooks/portone",
}

// TestOperationsDocumented: the client calls only documented operations, and
// every documented operation of the payments and webhook-endpoints APIs.
func TestOperationsDocumented(t *testing.T) {
	d := loadDoc(t)
	var documented []string
	for path, item := range d.Paths {
		if !strings.HasPrefix(path, "/v1/payments") && !strings.HasPrefix(path, "/v1/webhook") {
			continue
		}
		for method := range item {
			if method == "parameters" {
				continue
			}
			op := strings.ToUpper(method) + " " + path
			if !slices.Contains(notForCheckouts, op) {
				documented = append(documented, op)
			}
		}
	}
	var called []string
	for _, op := range operations {
		called = append(called, op.method+" "+op.path)
	}
	require.ElementsMatch(t, documented, called)
}

// TestTypesMatchSchemas: each type the client decodes or sends has exactly
// the members of its schema.
func TestTypesMatchSchemas(t *testing.T) {
	d := loadDoc(t)
	for name, v := range map[string]any{
		"Payment":                      Payment{},
		"Cancel":                       Cancel{},
		"Attempt":                      Attempt{},
		"AttemptList":                  AttemptPage{},
		"Failure":                      Failure{},
		"CreatePaymentRequest":         CreatePaymentRequest{},
		"ConfirmPaymentRequest":        ConfirmRequest{},
		"CancelPaymentRequest":         CancelRequest{},
		"WebhookEndpoint":              WebhookEndpoint{},
		"WebhookDelivery":              WebhookDelivery{},
		"CreateWebhookEndpointRequest": CreateWebhookEndpointRequest{},
		"WebhookEvent":                 Event{},
	} {
		require.Equal(t, propertyNames(d.schema(t, name)), jsonNames(v), name)
	}
	data := d.schema(t, "WebhookEvent").Properties["data"]
	require.Equal(t, propertyNames(data), jsonNames(EventData{}), "WebhookEvent data")
}

// TestCodesDocumented: every code the client names is one the api sends.
func TestCodesDocumented(t *testing.T) {
	d := loadDoc(t)
	var enum []string
	for _, v := range d.schema(t, "ProblemCode").AnyOf[0].Enum {
		enum = append(enum, v.(string))
	}
	for _, code := range []string{
		CodeInvalidRequest, CodePaymentNotFound, CodeOrderConflict, CodePaymentKeyConflict, CodeInvalidState,
		CodeAmountMismatch, CodeCancelInProgress, CodeCancelExceedsBalance, CodePaymentUnknown, CodeUnauthorized,
		CodeIdempotencyKeyReused, CodeIdempotencyRequestInProgress, CodeIdempotencyKeyRequired, CodeTooManyWaiters,
		CodeWebhookURLRefused, CodeWebhookEndpointNotFound, CodeWebhookDeliveryNotFound, CodeWebhookEndpointDisabled,
		CodeWebhookEndpointLimit, CodeWebhookURLTaken,
	} {
		require.Contains(t, enum, code)
	}
	var statuses []string
	for _, v := range d.schema(t, "PaymentStatus").Enum {
		statuses = append(statuses, v.(string))
	}
	require.ElementsMatch(t, statuses, []string{
		string(StatusReady), string(StatusConfirming), string(StatusConfirmed), string(StatusFailed), string(StatusExpired),
		string(StatusUnknown), string(StatusCanceling), string(StatusCanceled), string(StatusPartiallyCanceled), string(StatusWaitingForDeposit),
	})
}

func propertyNames(s *oaSchema) []string {
	var out []string
	for k := range s.Properties {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// jsonNames lists the JSON members a struct type encodes.
func jsonNames(v any) []string {
	var out []string
	typ := reflect.TypeOf(v)
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
