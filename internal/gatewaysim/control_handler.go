package gatewaysim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// The control API under /sim/v1. It takes no authentication (it is the test
// harness's, not the merchant's) and decodes strictly: an unknown field is a
// 400, because a misspelt fault setting silently ignored is a test that
// proves nothing.

func (s *Simulator) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	var req AuthorizeRequest
	if err := decodeStrict(w, r, &req); err != nil {
		writeControlError(w, err)
		return
	}
	auth, created, err := s.authorize(req)
	if err != nil {
		writeControlError(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	jsonResponse(status, auth).write(w)
}

func (s *Simulator) handleGetConfig(w http.ResponseWriter, _ *http.Request) {
	jsonResponse(http.StatusOK, s.Config()).write(w)
}

func (s *Simulator) handlePutConfig(w http.ResponseWriter, r *http.Request) {
	var cfg Config
	if err := decodeStrict(w, r, &cfg); err != nil {
		writeControlError(w, err)
		return
	}
	if err := s.SetConfig(cfg); err != nil {
		writeControlError(w, err)
		return
	}
	jsonResponse(http.StatusOK, s.Config()).write(w)
}

func (s *Simulator) handleScript(w http.ResponseWriter, r *http.Request) {
	var sc Script
	if err := decodeStrict(w, r, &sc); err != nil {
		writeControlError(w, err)
		return
	}
	queued, err := s.Script(sc)
	if err != nil {
		writeControlError(w, err)
		return
	}
	jsonResponse(http.StatusOK, queued).write(w)
}

func (s *Simulator) handleLedger(w http.ResponseWriter, _ *http.Request) {
	jsonResponse(http.StatusOK, s.Ledger()).write(w)
}

func (s *Simulator) handleLedgerEntry(w http.ResponseWriter, r *http.Request) {
	entry, ok := s.LedgerEntry(r.PathValue("paymentKey"))
	if !ok {
		writeControlError(w, errorWithStatus(http.StatusNotFound, CodeNotFoundPayment, "no payment with this paymentKey"))
		return
	}
	jsonResponse(http.StatusOK, entry).write(w)
}

func (s *Simulator) handleRequests(w http.ResponseWriter, r *http.Request) {
	jsonResponse(http.StatusOK, Requests{Requests: s.Requests(r.URL.Query().Get("paymentKey"))}).write(w)
}

func (s *Simulator) handleWebhookStats(w http.ResponseWriter, _ *http.Request) {
	jsonResponse(http.StatusOK, s.WebhookStats()).write(w)
}

func (s *Simulator) handleTossWebhookStats(w http.ResponseWriter, _ *http.Request) {
	jsonResponse(http.StatusOK, s.TossWebhookStats()).write(w)
}

func (s *Simulator) handleReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Simulator) handleHealth(w http.ResponseWriter, _ *http.Request) {
	jsonResponse(http.StatusOK, map[string]string{"status": "ok"}).write(w)
}

func (s *Simulator) handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeControlError(w, errorWithStatus(http.StatusNotFound, CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
}

// decodeStrict decodes exactly one JSON value with no unknown fields.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r)
	if err != nil {
		return errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "error decoding request body: %v", err)
	}
	if dec.More() {
		return errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "the request body holds more than one JSON value")
	}
	return nil
}

// writeControlError answers err; anything but an *Error is a bug, a 500.
func writeControlError(w http.ResponseWriter, err error) {
	var simErr *Error
	if !errors.As(err, &simErr) {
		simErr = errorWithStatus(http.StatusInternalServerError, CodeCommonError, "%s", fmt.Sprint(err))
	}
	simErr.response().write(w)
}
