package outboxtest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// modulePath is this module's path, for finding its source.
const modulePath = "github.com/payment-outbox/payment-outbox"

// binaries are the images built from the module's commands.
var binaries = []string{"api", "relay", "gatewaysim"}

// buildMu serialises image builds within a process: two tests starting at
// once build once.
var buildMu sync.Mutex

// moduleSource returns the directory of this module's source: this file's
// parent when it is in place (this repository, a replace directive), else
// where `go list` says the module is (the module cache).
func moduleSource() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir := filepath.Dir(filepath.Dir(file))
		if isModuleRoot(dir) {
			return dir, nil
		}
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", modulePath).Output()
	if err == nil {
		if dir := strings.TrimSpace(string(out)); dir != "" && isModuleRoot(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("cannot find the source of %s to build its images (go list -m: %v); "+
		"build them with `make images` in its repository and set %s=latest", modulePath, err, envImageTag)
}

func isModuleRoot(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && strings.Contains(string(b), "module "+modulePath+"\n")
}

// sourceTag names images built from the module's source as it is now: a
// hash of everything that goes into the binaries (non-test Go files, go.mod,
// go.sum, SQL migrations, the image recipes), so a change of the source
// makes a new tag and a stale image is never used.
func sourceTag(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); rel != "." && err == nil {
				return filepath.SkipDir // another module (examples, tools, deploy/k8s)
			}
			return nil
		}
		name := d.Name()
		relevant := (strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) ||
			name == "go.mod" || name == "go.sum" || strings.HasSuffix(name, ".sql") ||
			strings.HasPrefix(rel, filepath.Join("deploy", "images")+string(filepath.Separator))
		if !relevant {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("error hashing the module source: %w", err)
	}
	return "src-" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

// buildImages builds payment-outbox/{api,relay,gatewaysim}:tag from the
// module's source the way deploy/images/build does: each command compiled
// here (static, CGO_ENABLED=0, -trimpath, stripped) and put on scratch by
// deploy/images/Dockerfile.NAME. Nothing is pulled.
func buildImages(ctx context.Context, cli *testcontainers.DockerClient, dir, tag string) error {
	work, err := os.MkdirTemp("", "outboxtest-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	arch := runtime.GOARCH
	if info, err := cli.Info(ctx, client.InfoOptions{}); err == nil && info.Info.Architecture != "" {
		arch = goArch(info.Info.Architecture)
	}
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", work + string(filepath.Separator)}
	for _, b := range binaries {
		args = append(args, "./cmd/"+b)
	}
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("error compiling the images' binaries in %s: %w\n%s", dir, err, out)
	}

	// The host's CA bundle, as deploy/images/build uses; without one the
	// images still run everything a test does (plain http inside Docker).
	ca, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	for _, b := range binaries {
		files := map[string]string{
			"Dockerfile": filepath.Join(dir, "deploy", "images", "Dockerfile."+b),
			"passwd":     filepath.Join(dir, "deploy", "images", "passwd"),
			"group":      filepath.Join(dir, "deploy", "images", "group"),
			b:            filepath.Join(work, b),
		}
		buildCtx, err := tarContext(files, ca)
		if err != nil {
			return err
		}
		image := "payment-outbox/" + b
		res, err := cli.ImageBuild(ctx, buildCtx, client.ImageBuildOptions{
			Tags:   []string{image + ":" + tag},
			Remove: true, ForceRemove: true,
			Labels: map[string]string{"org.opencontainers.image.version": tag, labelSystem: "image"},
		})
		if err != nil {
			return fmt.Errorf("error building %s:%s: %w", image, tag, err)
		}
		err = readBuildOutput(res.Body)
		_ = res.Body.Close()
		if err != nil {
			return fmt.Errorf("error building %s:%s: %w", image, tag, err)
		}
	}
	return nil
}

// tarContext makes a build context of files (name in the context: path on
// disk) and the CA bundle.
func tarContext(files map[string]string, ca []byte) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, mode int64, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(b)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		b, err := os.ReadFile(files[name])
		if err != nil {
			return nil, fmt.Errorf("error reading %s for an image: %w", files[name], err)
		}
		mode := int64(0o644)
		if name != "Dockerfile" && name != "passwd" && name != "group" {
			mode = 0o755
		}
		if err := add(name, mode, b); err != nil {
			return nil, err
		}
	}
	if err := add("ca-certificates.crt", 0o644, ca); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// readBuildOutput reads Docker's build progress to its end and returns the
// error it reports, if any.
func readBuildOutput(r io.Reader) error {
	dec := json.NewDecoder(r)
	var last string
	for {
		var m struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("error reading build output: %w", err)
		}
		if m.Error != "" {
			return fmt.Errorf("%s (after: %s)", m.Error, strings.TrimSpace(last))
		}
		if m.Stream != "" {
			last = m.Stream
		}
	}
}

// goTool is the go command: the one on PATH, else the toolchain's that
// built this test binary.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// goArch maps Docker's architecture names to Go's.
func goArch(dockerArch string) string {
	switch dockerArch {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	}
	return runtime.GOARCH
}

// buildPostgresImage runs deploy/images/build-postgres-image from the
// module's source: for machines where no registry answers.
func buildPostgresImage(ctx context.Context, dir string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "deploy", "images", "build-postgres-image"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}
