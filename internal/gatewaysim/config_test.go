package gatewaysim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigControl(t *testing.T) {
	t.Parallel()

	b := setup(t)
	ctx := context.Background()

	cfg, err := b.control.Config(ctx)
	require.NoError(t, err)
	require.Equal(t, Config{}, cfg)

	want := Config{
		Seed:                    3,
		Latency:                 Duration(50 * time.Millisecond),
		LatencyJitter:           Duration(10 * time.Millisecond),
		ErrorRates:              map[string]float64{"PROVIDER_ERROR": 0.05},
		LostResponseRate:        0.01,
		HoldRate:                0.02,
		HoldFor:                 Duration(3 * time.Second),
		ConsecutiveCancelWindow: Duration(time.Second),
		Downtime:                []Window{{From: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)}},
		ReplayCachedErrors:      true,
		SessionTTL:              Duration(5 * time.Minute),
		AutoAuthorize:           true,
		PortOneWebhookURL:       "http://127.0.0.1:8080/v1/webhooks/portone",
		PortOneWebhookSecret:    "whsec_c2VjcmV0LWZvci1jb25maWctdGVzdA==",
	}
	b.setConfig(t, want)
	got, err := b.control.Config(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got)

	// Durations travel as Go duration strings.
	res, err := b.http.Get(b.baseURL + "/sim/v1/config")
	require.NoError(t, err)
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &raw))
	require.Equal(t, `"50ms"`, string(raw["latency"]))
	require.Equal(t, `"5m0s"`, string(raw["sessionTTL"]))
	require.Equal(t, `"3s"`, string(raw["holdFor"]))
	require.Equal(t, `0.02`, string(raw["holdRate"]))
	require.Equal(t, `"1s"`, string(raw["consecutiveCancelWindow"]))
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()

	b := setup(t)
	ctx := context.Background()
	good := Config{Latency: Duration(time.Millisecond)}
	b.setConfig(t, good)

	for name, body := range map[string]string{
		"bad json":           `{"latency":`,
		"unknown field":      `{"latncy":"1s"}`,
		"number duration":    `{"latency":1000}`,
		"bad duration":       `{"latency":"soon"}`,
		"negative latency":   `{"latency":"-1s"}`,
		"negative jitter":    `{"latencyJitter":"-1ms"}`,
		"negative ttl":       `{"sessionTTL":"-10m"}`,
		"rate above 1":       `{"errorRates":{"PROVIDER_ERROR":1.5}}`,
		"negative rate":      `{"errorRates":{"PROVIDER_ERROR":-0.1}}`,
		"rates sum above 1":  `{"errorRates":{"PROVIDER_ERROR":0.6,"COMMON_ERROR":0.6}}`,
		"unknown code":       `{"errorRates":{"NOT_A_TOSS_CODE":0.1}}`,
		"409 not injected":   `{"errorRates":{"IDEMPOTENT_REQUEST_PROCESSING":0.1}}`,
		"lost rate above 1":  `{"lostResponseRate":2}`,
		"hold rate above 1":  `{"holdRate":1.5,"holdFor":"1s"}`,
		"negative hold":      `{"holdRate":-0.1,"holdFor":"1s"}`,
		"negative holdFor":   `{"holdFor":"-1s"}`,
		"hold for nothing":   `{"holdRate":0.5}`,
		"negative window":    `{"consecutiveCancelWindow":"-1s"}`,
		"window backwards":   `{"downtime":[{"from":"2030-01-01T01:00:00Z","until":"2030-01-01T00:00:00Z"}]}`,
		"window open":        `{"downtime":[{"from":"2030-01-01T01:00:00Z"}]}`,
		"two values":         `{} {}`,
		"webhook unsigned":   `{"portOneWebhookURL":"http://127.0.0.1:8080/v1/webhooks/portone"}`,
		"webhook not http":   `{"portOneWebhookURL":"ftp://example.test/hook","portOneWebhookSecret":"whsec_c2VjcmV0"}`,
		"webhook no host":    `{"portOneWebhookURL":"/v1/webhooks/portone","portOneWebhookSecret":"whsec_c2VjcmV0"}`,
		"webhook bad secret": `{"portOneWebhookURL":"http://127.0.0.1:8080/hook","portOneWebhookSecret":"whsec_not base64!"}`,
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, b.baseURL+"/sim/v1/config", bytes.NewReader([]byte(body)))
		require.NoError(t, err)
		res, err := b.http.Do(req)
		require.NoError(t, err)
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", name, data)
		var e Error
		require.NoError(t, json.Unmarshal(data, &e), name)
		require.Equal(t, CodeInvalidRequest, e.Code, name)
		require.NotEmpty(t, e.Message, name)
	}

	got, err := b.control.Config(ctx)
	require.NoError(t, err)
	require.Equal(t, good, got, "a rejected config changes nothing")

	_, err = New(Options{Config: Config{LostResponseRate: -1}})
	require.Error(t, err)
}

func TestConfigValidateNamesTheField(t *testing.T) {
	t.Parallel()

	for want, cfg := range map[string]Config{
		"holdRate: 1.5 is not a probability in [0, 1]": {HoldRate: 1.5, HoldFor: Duration(time.Second)},
		"holdRate: NaN is not a probability in [0, 1]": {HoldRate: math.NaN(), HoldFor: Duration(time.Second)},
		"holdFor: -1s is negative":                     {HoldFor: Duration(-time.Second)},
		"holdRate: 0.5 needs a positive holdFor":       {HoldRate: 0.5},
		"consecutiveCancelWindow: -1ms is negative":    {ConsecutiveCancelWindow: Duration(-time.Millisecond)},
	} {
		require.EqualError(t, cfg.Validate(), want)
	}
	require.NoError(t, Config{HoldFor: Duration(time.Second)}.Validate(), "a hold time alone holds nothing")
}

func TestParseErrorRates(t *testing.T) {
	t.Parallel()

	rates, err := ParseErrorRates("PROVIDER_ERROR=0.05, FAILED_INTERNAL_SYSTEM_PROCESSING=0.02")
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"PROVIDER_ERROR": 0.05, "FAILED_INTERNAL_SYSTEM_PROCESSING": 0.02}, rates)
	require.Equal(t, "FAILED_INTERNAL_SYSTEM_PROCESSING=0.02,PROVIDER_ERROR=0.05", FormatErrorRates(rates))

	rates, err = ParseErrorRates("")
	require.NoError(t, err)
	require.Empty(t, rates)

	for _, bad := range []string{"PROVIDER_ERROR", "=0.1", "PROVIDER_ERROR=lots"} {
		_, err := ParseErrorRates(bad)
		require.Error(t, err, bad)
	}
}

func TestRequestLogIsCapped(t *testing.T) {
	t.Parallel()

	log := newRequestLog(3)
	for i := range 5 {
		log.append(RequestRecord{PaymentKey: "k", HTTPStatus: i})
	}
	records := log.list("")
	require.Len(t, records, 3)
	require.Equal(t, []int{2, 3, 4}, []int{records[0].HTTPStatus, records[1].HTTPStatus, records[2].HTTPStatus})
	require.Empty(t, log.list("other"))
}
