// Package debugserver serves net/http/pprof on a listener of its own, for
// profiling the api and the relay under load (PPROF_ADDR). It is off unless
// asked for: profiles show internals, and a CPU profile costs CPU while it
// runs, so it listens on loopback only (CheckAddr).
package debugserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"
)

// CheckAddr validates a PPROF_ADDR value: host:port with a loopback host
// (localhost, 127.0.0.0/8 or ::1). The profiles show the program's
// internals (command line, goroutines with their arguments, heap), and a
// CPU profile or trace costs CPU for as long as anyone asks, so they are
// never served beyond the machine (docs/design.md, section 21); reach them
// from elsewhere through a port forward or kubectl port-forward.
func CheckAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("PPROF_ADDR must be host:port (e.g. 127.0.0.1:6060), got %q", addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback() {
		return nil
	}
	return fmt.Errorf("PPROF_ADDR must be on a loopback host (127.0.0.1, [::1] or localhost), got %q: profiles are never served beyond the machine", addr)
}

// Serve serves the profiles on addr until ctx ends. Its own mux: pprof's
// init also registers on http.DefaultServeMux, which nothing here serves.
func Serve(ctx context.Context, addr string, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(shutCtx)
	}()
	logger.Info("pprof listening", slog.String("addr", addr))
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("pprof server failed", slog.String("error", err.Error()))
	}
}
