package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// readJSON checks that a request carries a JSON body within the size limit
// and decodes it strictly into dst, a pointer to a request struct.
func (s *Server) readJSON(c echo.Context, dst any) error {
	if err := checkContentType(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return err
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	return decodeJSON(body, dst)
}

// readBody reads a request's body, refusing one over the size limit.
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	req := c.Request()
	// A declared length over the limit is refused before reading a byte;
	// MaxBytesReader catches bodies that lie about it or stream without one.
	if req.ContentLength > s.bodyLimit {
		return nil, s.bodyTooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, s.bodyLimit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, s.bodyTooLarge()
		}
		return nil, invalid(payment.CodeInvalidRequest, "the request body could not be read")
	}
	return body, nil
}

// bodyTooLarge is the 413 of a body over the limit.
func (s *Server) bodyTooLarge() error {
	return &problemError{
		status: http.StatusRequestEntityTooLarge,
		code:   codeBodyTooLarge,
		detail: fmt.Sprintf("the request body must be at most %d bytes", s.bodyLimit),
	}
}

// checkContentType accepts application/json, optionally with a UTF-8
// charset: JSON is UTF-8 (RFC 8259), and a client declaring otherwise is
// sending something we would misread.
func checkContentType(header string) error {
	unsupported := &problemError{
		status: http.StatusUnsupportedMediaType,
		code:   codeUnsupportedMediaType,
		detail: "the request body must be sent with Content-Type: application/json",
	}
	if header == "" {
		return unsupported
	}
	mediaType, params, err := mime.ParseMediaType(header)
	if err != nil || mediaType != "application/json" {
		return unsupported
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return unsupported
	}
	return nil
}

// decodeJSON decodes body, which must be exactly one JSON object, into dst.
//
// Why two passes: encoding/json matches member names case-insensitively and
// lets a duplicate member silently win, so {"amount":1,"AMOUNT":100} would
// decode to 100. Two parsers that disagree about one body (a proxy and this
// service, say) are how payment amounts get tampered with, so the first pass
// walks the object's members and accepts only the exact names dst declares,
// each once, and nothing after the object. The second pass does the typed
// decoding.
func decodeJSON(body []byte, dst any) error {
	if !utf8.Valid(body) {
		// encoding/json would quietly turn bad bytes into U+FFFD.
		return invalid(codeInvalidJSON, "the request body is not valid UTF-8")
	}
	if err := checkMembers(body, jsonFieldNames(dst)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeProblem(err)
	}
	return nil
}

// checkMembers checks that body is one JSON object whose member names are all
// in allowed, none repeated, with nothing but whitespace after it.
func checkMembers(body []byte, allowed map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return invalid(codeInvalidJSON, "the request body is empty; expected a JSON object")
	}
	if err != nil {
		return syntaxProblem(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return invalid(codeInvalidJSON, "the request body must be a JSON object")
	}
	seen := make(map[string]bool, len(allowed))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxProblem(err)
		}
		name, ok := tok.(string)
		if !ok {
			// Token only yields strings in a member-name position; kept as
			// a guard rather than a panic.
			return invalid(codeInvalidJSON, "the request body is not valid JSON")
		}
		if !allowed[name] {
			return invalid(codeUnknownField, fmt.Sprintf("unknown field %s; allowed: %s", quote(name), fieldList(allowed)))
		}
		if seen[name] {
			return invalid(codeInvalidJSON, fmt.Sprintf("field %s appears more than once", quote(name)))
		}
		seen[name] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return syntaxProblem(err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return syntaxProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid(codeInvalidJSON, "unexpected data after the JSON object")
	}
	return nil
}

func syntaxProblem(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return invalid(codeInvalidJSON, fmt.Sprintf("the request body is not valid JSON: %s (at byte %d)", se.Error(), se.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid(codeInvalidJSON, "the request body is not valid JSON: it ends in the middle of a value")
	}
	return invalid(codeInvalidJSON, "the request body is not valid JSON")
}

// decodeProblem explains an error from the typed pass. By then the body is
// known to be a well-formed object with known members, so what is left is a
// member of the wrong JSON type or an amount that is not an integer.
func decodeProblem(err error) error {
	var ae *amountError
	if errors.As(err, &ae) {
		return invalid(payment.CodeInvalidRequest, ae.msg)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := "a string"
		switch te.Type.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			want = "an integer"
		case reflect.Bool:
			want = "a boolean"
		}
		return invalid(payment.CodeInvalidRequest, fmt.Sprintf("%s must be %s, not a JSON %s", te.Field, want, te.Value))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
		return syntaxProblem(err)
	}
	if strings.HasPrefix(err.Error(), "json: unknown field") {
		// Unreachable after checkMembers; DisallowUnknownFields stays as a
		// second lock on the same door.
		return invalid(codeUnknownField, err.Error())
	}
	return invalid(codeInvalidJSON, "the request body could not be decoded")
}

// jsonFieldNames lists the JSON member names of the struct dst points to.
func jsonFieldNames(dst any) map[string]bool {
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names[name] = true
	}
	return names
}

func fieldList(allowed map[string]bool) string {
	return strings.Join(slices.Sorted(maps.Keys(allowed)), ", ")
}

// quote quotes a client-supplied string for an error message, cut short so a
// long one cannot bloat the answer.
func quote(s string) string {
	return strconv.Quote(clip(s))
}

// clip cuts a client-supplied string short for an error message.
func clip(s string) string {
	const maxLen = 40
	if utf8.RuneCountInString(s) > maxLen {
		r := []rune(s)
		s = string(r[:maxLen]) + "…"
	}
	return s
}

// amount is a money amount as a request carries it. It accepts a JSON
// integer and nothing else: not a string ("100"), not a fraction (1.5), not
// an exponent (1e3), even where encoding/json would convert them, because a
// client that sends any of those has a bug we want it to see. A JSON null
// counts as absent.
type amount struct {
	set   bool
	value int64
}

// amountError is why an amount was refused, worded for the client.
type amountError struct{ msg string }

func (e *amountError) Error() string { return e.msg }

// UnmarshalJSON implements json.Unmarshaler.
func (a *amount) UnmarshalJSON(b []byte) error {
	v, set, err := parseAmount(b)
	if err != nil {
		return err
	}
	*a = amount{set: set, value: v}
	return nil
}

// parseAmount reads one JSON value as an amount. It only checks the form;
// whether the value is acceptable (positive, equal to the intent) is the
// domain's call.
func parseAmount(b []byte) (int64, bool, error) {
	s := string(bytes.TrimSpace(b))
	const want = "amount must be a JSON integer (a whole number of the currency's smallest unit, e.g. 15000)"
	switch {
	case s == "null":
		// Not "absent": on a cancel, an absent amount refunds the whole
		// balance, and a null is more likely a client's bug than that wish.
		return 0, false, &amountError{want + ", not null; omit it instead"}
	case s == "":
		return 0, false, &amountError{want}
	case s[0] == '"':
		return 0, false, &amountError{want + ", not a string"}
	case s[0] != '-' && (s[0] < '0' || s[0] > '9'):
		return 0, false, &amountError{want}
	case strings.ContainsAny(s, ".eE"):
		return 0, false, &amountError{want + "; " + clip(s) + " has a fraction or an exponent"}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, false, &amountError{"amount " + clip(s) + " is too large"}
	}
	if err != nil {
		return 0, false, &amountError{want}
	}
	return v, true, nil
}
