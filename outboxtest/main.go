package outboxtest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

const envRyukDisabled = "TESTCONTAINERS_RYUK_DISABLED"

// Main runs a test binary's tests; call it from TestMain:
//
//	func TestMain(m *testing.M) { outboxtest.Main(m) }
//
// Before the tests, it decides about testcontainers' reaper (Ryuk) for the
// whole binary, which is the only scope testcontainers allows: when
// TESTCONTAINERS_RYUK_DISABLED is not set and the reaper's image is not in
// the local Docker engine, it disables the reaper, because on a machine with
// no registry in reach pulling that image would fail every test after a long
// retry. Containers are then removed by System.Terminate alone, and a test
// binary that is killed leaves its containers behind; they carry a label:
//
//	docker rm -f $(docker ps -aq --filter label=payment-outbox.outboxtest)
//
// Where the reaper's image is present, or the variable is set either way,
// nothing changes.
func Main(m *testing.M) {
	if reason := reaperUnavailable(); reason != "" {
		fmt.Fprintf(os.Stderr, "outboxtest: %s; setting %s=true (System.Terminate still removes everything)\n",
			reason, envRyukDisabled)
		// Before any testcontainers call: it reads its configuration once
		// per process.
		_ = os.Setenv(envRyukDisabled, "true")
	}
	os.Exit(m.Run())
}

// reaperUnavailable says why the reaper cannot run here, or "" if it can
// (or the user has decided). It uses Docker's client, not testcontainers',
// because testcontainers would read (and freeze) its configuration.
func reaperUnavailable() string {
	if _, set := os.LookupEnv(envRyukDisabled); set {
		return ""
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return ""
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.ImageInspect(ctx, testcontainers.ReaperDefaultImage); cerrdefs.IsNotFound(err) {
		return "the reaper image " + testcontainers.ReaperDefaultImage + " is not in the local Docker engine"
	}
	// Present, or Docker does not answer (and the tests will skip).
	return ""
}
