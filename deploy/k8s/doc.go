// Package k8s holds the Kubernetes manifests of the payment outbox (a
// kustomize base and its overlays) and, in manifests_test.go, the check that
// every overlay builds and every object it produces is valid against the
// Kubernetes API types and follows the deployment rules the project relies
// on (probes, resource limits, non-root, grace periods that cover the
// relay's drain).
//
// It is its own Go module so that kustomize and the Kubernetes API packages
// stay out of the service's go.mod. `go test ./...` at the repository root
// does not enter it; `make verify-deploy` (part of `make test`) runs it.
package k8s
