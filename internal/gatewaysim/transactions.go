package gatewaysim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// The books (reconciliation) listings: Toss's GET /v1/transactions and
// PortOne's GET /payments-by-cursor, over the one book of payments. Every
// approval and every refund, however it was made (a relay's cancel, or an
// operator's in the gateway's console), is in them.

const (
	// TransactionsDefaultLimit is the page GET /v1/transactions serves
	// when no limit is given. Toss's documentation names no default; this
	// one is the simulator's.
	TransactionsDefaultLimit = 100
	// TransactionsMaxLimit is the largest page GET /v1/transactions
	// serves.
	TransactionsMaxLimit = 5000
	// PortOneListDefaultSize and PortOneListMaxSize are
	// GetAllPaymentsByCursorBody.size's default and maximum.
	PortOneListDefaultSize = 10
	PortOneListMaxSize     = 1000
	// tossDateLayout is how Toss takes startDate and endDate: Korean local
	// time without an offset, optionally with milliseconds.
	tossDateLayout = "2006-01-02T15:04:05"
	// portOneListWindow is how far before until a listing reaches when no
	// from is given.
	portOneListWindow = 90 * 24 * time.Hour
)

// Transaction is one record of Toss's 거래 조회 API.
type Transaction struct {
	MID            string `json:"mId"`
	TransactionKey string `json:"transactionKey"`
	PaymentKey     string `json:"paymentKey"`
	OrderID        string `json:"orderId"`
	Currency       string `json:"currency"`
	Method         string `json:"method"`
	CustomerKey    string `json:"customerKey"`
	UseEscrow      bool   `json:"useEscrow"`
	Amount         int64  `json:"amount"`
	Status         string `json:"status"`
	TransactionAt  string `json:"transactionAt"`
	at             time.Time
}

// tossTransactions returns every transaction of the Toss payments, oldest
// first: each approval (DONE) and each cancel (CANCELED or
// PARTIAL_CANCELED, the status it left the payment in).
func (s *Simulator) tossTransactions() []Transaction {
	var out []Transaction
	for _, p := range s.payments.all() {
		if p.gateway != GatewayToss {
			continue
		}
		p.mu.Lock()
		base := Transaction{MID: merchantID, PaymentKey: p.paymentKey, OrderID: p.orderID, Currency: currencyKRW, Method: methodCard}
		if p.approvals > 0 {
			t := base
			t.TransactionKey, t.Amount, t.Status, t.at = p.approvalKey, p.chargedAmount(), StatusDone, p.approvedAt
			out = append(out, t)
		}
		for _, c := range p.cancels {
			t := base
			t.TransactionKey, t.Amount, t.at = c.transactionKey, c.amount, c.at
			t.Status = StatusPartialCanceled
			if c.refundable == 0 {
				t.Status = StatusCanceled
			}
			out = append(out, t)
		}
		p.mu.Unlock()
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].at.Equal(out[j].at) {
			return out[i].at.Before(out[j].at)
		}
		return out[i].TransactionKey < out[j].TransactionKey
	})
	for i := range out {
		out[i].TransactionAt = formatTossTime(out[i].at)
	}
	return out
}

// parseTossDate reads startDate or endDate as Korean local time.
func parseTossDate(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("%s is required", name)
	}
	for _, layout := range []string{tossDateLayout, tossDateLayout + ".000"} {
		if t, err := time.ParseInLocation(layout, v, kst); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q is not a date and time like 2022-01-01T00:00:00", name, v)
}

func (s *Simulator) handleTransactions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.serveV1(w, r, OperationList, "", func(string) response {
		start, err := parseTossDate("startDate", q.Get("startDate"))
		if err != nil {
			return newError(CodeInvalidRequest, "%v", err).response()
		}
		end, err := parseTossDate("endDate", q.Get("endDate"))
		if err != nil {
			return newError(CodeInvalidRequest, "%v", err).response()
		}
		if end.Before(start) {
			return newError(CodeInvalidRequest, "endDate is before startDate").response()
		}
		limit := TransactionsDefaultLimit
		if v := q.Get("limit"); v != "" {
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > TransactionsMaxLimit {
				return newError(CodeInvalidRequest, "limit must be 1 to %d", TransactionsMaxLimit).response()
			}
		}
		// endDate names a second and covers all of it: 23:59:59 lists up
		// to midnight.
		end = end.Truncate(time.Second).Add(time.Second)
		var window []Transaction
		for _, t := range s.tossTransactions() {
			if !t.at.Before(start) && t.at.Before(end) {
				window = append(window, t)
			}
		}
		if after := q.Get("startingAfter"); after != "" {
			i := 0
			for i < len(window) && window[i].TransactionKey != after {
				i++
			}
			if i == len(window) {
				return newError(CodeInvalidTransactionKey, "잘못된 페이징 키 입니다.").response()
			}
			window = window[i+1:]
		}
		if len(window) > limit {
			window = window[:limit]
		}
		if window == nil {
			window = []Transaction{}
		}
		return jsonResponse(http.StatusOK, window)
	})
}

// portOneListBody is GetAllPaymentsByCursorBody.
type portOneListBody struct {
	StoreID string     `json:"storeId"`
	From    *time.Time `json:"from"`
	Until   *time.Time `json:"until"`
	Cursor  string     `json:"cursor"`
	Size    *int       `json:"size"`
}

// portOneListItem is PaymentWithCursor.
type portOneListItem struct {
	Payment portOneWirePayment `json:"payment"`
	Cursor  string             `json:"cursor"`
}

// portOneCursor is the opaque cursor after a payment.
func portOneCursor(paymentID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(paymentID))
}

func (s *Simulator) handlePortOneList(w http.ResponseWriter, r *http.Request) {
	// PortOne takes the body on this GET either as the requestBody query
	// parameter (as its SDK sends it) or as the request body.
	raw := []byte(r.URL.Query().Get("requestBody"))
	var readErr error
	if len(raw) == 0 {
		raw, readErr = readBody(w, r)
	}
	s.serve(w, r, portOneAPI{s}, OperationList, "", func(string) response {
		var req portOneListBody
		if readErr != nil {
			return portOneResponse(PortOneInvalidRequest, readErr.Error())
		}
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &req); err != nil {
				return portOneResponse(PortOneInvalidRequest, fmt.Sprintf("the request body is not valid JSON for a payment list: %v", err))
			}
		}
		if req.StoreID != "" && req.StoreID != s.portOneStoreID {
			return portOneResponse(PortOneForbidden, "the API secret has no access to store "+req.StoreID)
		}
		until := s.now()
		if req.Until != nil {
			until = *req.Until
		}
		from := until.Add(-portOneListWindow)
		if req.From != nil {
			from = *req.From
		}
		size := PortOneListDefaultSize
		if req.Size != nil {
			size = *req.Size
		}
		if size < 1 || size > PortOneListMaxSize {
			return portOneResponse(PortOneInvalidRequest, fmt.Sprintf("size must be 1 to %d", PortOneListMaxSize))
		}
		var listed []*paymentState
		for _, p := range s.payments.all() {
			if p.gateway == GatewayPortOne && !p.authenticatedAt.Before(from) && p.authenticatedAt.Before(until) {
				listed = append(listed, p)
			}
		}
		sort.SliceStable(listed, func(i, j int) bool {
			if !listed[i].authenticatedAt.Equal(listed[j].authenticatedAt) {
				return listed[i].authenticatedAt.Before(listed[j].authenticatedAt)
			}
			return listed[i].paymentKey < listed[j].paymentKey
		})
		if req.Cursor != "" {
			i := 0
			for i < len(listed) && portOneCursor(listed[i].paymentKey) != req.Cursor {
				i++
			}
			if i == len(listed) {
				return portOneResponse(PortOneInvalidRequest, "cursor does not point into this listing")
			}
			listed = listed[i+1:]
		}
		if len(listed) > size {
			listed = listed[:size]
		}
		items := make([]portOneListItem, 0, len(listed))
		for _, p := range listed {
			p.mu.Lock()
			items = append(items, portOneListItem{Payment: p.toPortOne(s.portOneStoreID), Cursor: portOneCursor(p.paymentKey)})
			p.mu.Unlock()
		}
		return jsonResponse(http.StatusOK, map[string][]portOneListItem{"items": items})
	})
}
