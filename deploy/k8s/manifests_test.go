package k8s

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"
)

const (
	apiImage   = "payment-outbox/api"
	relayImage = "payment-outbox/relay"

	// What cmd/relay does after RELAY_SHUTDOWN_TIMEOUT runs out: River's
	// StopAndCancel gets up to 10s, then the probe server up to 5s.
	relayHardStop = 10 * time.Second
	// Slack on top of each process's own shutdown bound: signal delivery,
	// exit, and (for the relay) the probe server.
	stopSlack = 5 * time.Second
)

// overlayChecks are the checks particular to an overlay, on top of those
// every overlay gets. An overlay missing here still gets the common checks.
var overlayChecks = map[string]func(t *testing.T, m *manifests){
	"sidecar": func(t *testing.T, m *manifests) {
		api := m.deployment(t, "payment-outbox-api")
		spec := api.Spec.Template.Spec
		relay := findContainer(spec.InitContainers, relayImage)
		require.NotNil(t, relay, "the api pod runs the relay as a sidecar")
		require.NotNil(t, relay.RestartPolicy, "the relay is a native sidecar (restartPolicy: Always)")
		require.Equal(t, corev1.ContainerRestartPolicyAlways, *relay.RestartPolicy)
		require.NotNil(t, findContainer(spec.Containers, apiImage), "the api pod runs the api")
		for name, d := range m.deployments {
			if name != api.Name {
				require.Nil(t, findContainer(allContainers(d.Spec.Template.Spec), relayImage),
					"Deployment %s runs a relay although every api pod has one", name)
			}
		}
	},
	"standalone-relay": func(t *testing.T, m *manifests) {
		api := m.deployment(t, "payment-outbox-api")
		require.Nil(t, findContainer(allContainers(api.Spec.Template.Spec), relayImage), "the api pod runs no relay")
		require.NotNil(t, findContainer(api.Spec.Template.Spec.Containers, apiImage))

		relay := m.deployment(t, "payment-outbox-relay")
		require.Empty(t, relay.Spec.Template.Spec.InitContainers)
		require.NotNil(t, findContainer(relay.Spec.Template.Spec.Containers, relayImage), "the relay Deployment runs the relay")
		require.NotNil(t, m.pdbFor(relay), "the relay Deployment has its own PodDisruptionBudget")
		require.NotSame(t, m.pdbFor(api), m.pdbFor(relay))
	},
}

// TestOverlays builds every overlay in-process, as `kustomize build` would,
// decodes every object strictly into its Kubernetes API type and checks the
// rules the deployment relies on.
func TestOverlays(t *testing.T) {
	t.Parallel()

	dirs, err := filepath.Glob("overlays/*/kustomization.yaml")
	require.NoError(t, err)
	var names []string
	for _, d := range dirs {
		names = append(names, filepath.Base(filepath.Dir(d)))
	}
	for name := range overlayChecks {
		require.Contains(t, names, name, "overlay %s is missing", name)
	}

	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := build(t, filepath.Join("overlays", name))

			t.Run("Pods", func(t *testing.T) { checkPods(t, m) })
			t.Run("Probes", func(t *testing.T) { checkProbes(t, m) })
			t.Run("GracePeriods", func(t *testing.T) { checkGracePeriods(t, m) })
			t.Run("DisruptionBudgets", func(t *testing.T) { checkDisruptionBudgets(t, m) })
			t.Run("Service", func(t *testing.T) { checkService(t, m) })
			t.Run("Secrets", func(t *testing.T) { checkSecrets(t, m) })
			t.Run("MigrationJob", func(t *testing.T) { checkMigrationJob(t, m) })
			t.Run("Scraping", func(t *testing.T) { checkScraping(t, m) })
			t.Run("MetricsOffTheService", func(t *testing.T) { checkMetricsOffTheService(t, m) })
			if check, ok := overlayChecks[name]; ok {
				t.Run("Overlay", func(t *testing.T) { check(t, m) })
			}
		})
	}
}

// TestStrictDecoding makes sure the decoder used above does reject what the
// API server would: a misspelt field must fail the build, not vanish.
func TestStrictDecoding(t *testing.T) {
	t.Parallel()

	_, err := decode([]byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: x
          image: x:1
          livenessProbes: {}
`))
	require.ErrorContains(t, err, "livenessProbes")

	_, err = decode([]byte("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n"))
	require.Error(t, err, "a kind the test does not know must fail, not pass unchecked")
}

// manifests are the objects one overlay builds, by kind and name.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	jobs        map[string]*batchv1.Job
	services    map[string]*corev1.Service
	secrets     map[string]*corev1.Secret
	pdbs        map[string]*policyv1.PodDisruptionBudget
}

func (m *manifests) deployment(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	d, ok := m.deployments[name]
	require.True(t, ok, "no Deployment %s", name)
	return d
}

// pdbFor returns the PodDisruptionBudget selecting d's pods, or nil.
func (m *manifests) pdbFor(d *appsv1.Deployment) *policyv1.PodDisruptionBudget {
	for _, pdb := range m.pdbs {
		sel, err := metaSelector(pdb.Spec.Selector.MatchLabels)
		if err == nil && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			return pdb
		}
	}
	return nil
}

// podTemplates are every pod template, named for messages.
func (m *manifests) podTemplates() map[string]*corev1.PodTemplateSpec {
	pods := map[string]*corev1.PodTemplateSpec{}
	for name, d := range m.deployments {
		pods["Deployment "+name] = &d.Spec.Template
	}
	for name, j := range m.jobs {
		pods["Job "+name] = &j.Spec.Template
	}
	return pods
}

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, batchv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// decoder decodes into the registered types and, being strict, fails on
// unknown or duplicate fields instead of dropping them.
var decoder = serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

func decode(yaml []byte) (runtime.Object, error) {
	obj, _, err := decoder.Decode(yaml, nil, nil)
	return obj, err
}

// build runs kustomize on dir and decodes what it produces.
func build(t *testing.T, dir string) *manifests {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	require.NoError(t, err, "kustomize build %s", dir)

	m := &manifests{
		deployments: map[string]*appsv1.Deployment{},
		jobs:        map[string]*batchv1.Job{},
		services:    map[string]*corev1.Service{},
		secrets:     map[string]*corev1.Secret{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
	}
	for _, res := range resMap.Resources() {
		yaml, err := res.AsYAML()
		require.NoError(t, err)
		obj, err := decode(yaml)
		require.NoError(t, err, "%s %s does not decode strictly into its API type:\n%s", res.GetKind(), res.GetName(), yaml)
		switch o := obj.(type) {
		case *appsv1.Deployment:
			m.deployments[o.Name] = o
		case *batchv1.Job:
			m.jobs[o.Name] = o
		case *corev1.Service:
			m.services[o.Name] = o
		case *corev1.Secret:
			m.secrets[o.Name] = o
		case *policyv1.PodDisruptionBudget:
			m.pdbs[o.Name] = o
		default:
			require.Failf(t, "unchecked kind", "%T (%s %s) has no checks here: add them", obj, res.GetKind(), res.GetName())
		}
	}
	return m
}

// checkPods holds every container to the same rules: a pinned image, limits,
// and no way to gain privileges or write to the image.
func checkPods(t *testing.T, m *manifests) {
	for where, pod := range m.podTemplates() {
		spec := pod.Spec
		require.NotNil(t, spec.AutomountServiceAccountToken, where)
		require.False(t, *spec.AutomountServiceAccountToken, "%s: no service account token (nothing talks to the Kubernetes API)", where)
		require.NotNil(t, spec.SecurityContext, where)

		for _, c := range allContainers(spec) {
			where := fmt.Sprintf("%s container %s", where, c.Name)

			_, tag := splitImage(c.Image)
			require.NotEmpty(t, tag, "%s: image %q has no tag", where, c.Image)
			require.True(t, isImage(c, apiImage) || isImage(c, relayImage), "%s: unexpected image %q", where, c.Image)
			require.NotEmpty(t, c.ImagePullPolicy, where)

			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, ok := c.Resources.Requests[res]
				require.True(t, ok, "%s: no %s request", where, res)
				lim, ok := c.Resources.Limits[res]
				require.True(t, ok, "%s: no %s limit", where, res)
				require.True(t, req.Cmp(lim) <= 0, "%s: %s request %s above limit %s", where, res, req.String(), lim.String())
				require.True(t, req.Cmp(resource.Quantity{}) > 0, "%s: zero %s request", where, res)
			}

			sc := c.SecurityContext
			require.NotNil(t, sc, where)
			require.True(t, effective(sc.RunAsNonRoot, spec.SecurityContext.RunAsNonRoot), "%s: runAsNonRoot", where)
			uid := sc.RunAsUser
			if uid == nil {
				uid = spec.SecurityContext.RunAsUser
			}
			require.NotNil(t, uid, "%s: a numeric user, so the kubelet can check runAsNonRoot", where)
			require.NotZero(t, *uid, where)
			require.True(t, effective(sc.ReadOnlyRootFilesystem, nil), "%s: readOnlyRootFilesystem", where)
			require.NotNil(t, sc.AllowPrivilegeEscalation, where)
			require.False(t, *sc.AllowPrivilegeEscalation, "%s: allowPrivilegeEscalation", where)
			require.NotNil(t, sc.Capabilities, where)
			require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, "%s: drop every capability", where)
			require.Empty(t, sc.Capabilities.Add, where)
			seccomp := sc.SeccompProfile
			if seccomp == nil {
				seccomp = spec.SecurityContext.SeccompProfile
			}
			require.NotNil(t, seccomp, "%s: seccomp profile", where)
			require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, seccomp.Type, where)
			require.Nil(t, sc.Privileged, where)

			seen := map[string]bool{}
			for _, e := range c.Env {
				require.False(t, seen[e.Name], "%s: %s set twice", where, e.Name)
				seen[e.Name] = true
			}
			require.True(t, seen["DATABASE_URL"], "%s: DATABASE_URL", where)
		}
	}
}

// checkProbes: every long-running container (a Deployment's containers and
// its native sidecars) answers liveness on /healthz and readiness on /readyz
// at a port it declares.
func checkProbes(t *testing.T, m *manifests) {
	for name, d := range m.deployments {
		spec := d.Spec.Template.Spec
		var running []corev1.Container
		running = append(running, spec.Containers...)
		for _, c := range spec.InitContainers {
			require.True(t, isSidecar(c), "Deployment %s: init container %s is not a sidecar; nothing should run before the pod starts", name, c.Name)
			running = append(running, c)
		}
		for _, c := range running {
			where := fmt.Sprintf("Deployment %s container %s", name, c.Name)
			for kind, want := range map[string]struct {
				probe *corev1.Probe
				path  string
			}{
				"liveness":  {c.LivenessProbe, "/healthz"},
				"readiness": {c.ReadinessProbe, "/readyz"},
			} {
				require.NotNil(t, want.probe, "%s: no %s probe", where, kind)
				require.NotNil(t, want.probe.HTTPGet, "%s: %s probe is not an HTTP GET", where, kind)
				require.Equal(t, want.path, want.probe.HTTPGet.Path, "%s: %s probe path", where, kind)
				require.True(t, declaresPort(c, want.probe.HTTPGet.Port.String()), "%s: %s probe port %s is not a port of the container", where, kind, want.probe.HTTPGet.Port.String())
			}
		}
	}
}

// checkGracePeriods: a pod's terminationGracePeriodSeconds is exactly what
// its containers' shutdown settings add up to, recomputed here from their
// env, so changing RELAY_SHUTDOWN_TIMEOUT without the grace period (or the
// other way round) fails. Plain containers stop at once, so the longest
// counts; native sidecars stop after the main containers have exited, so
// theirs adds up.
func checkGracePeriods(t *testing.T, m *manifests) {
	for name, d := range m.deployments {
		spec := d.Spec.Template.Spec
		var main, sidecars time.Duration
		for _, c := range spec.Containers {
			main = max(main, stopTime(t, c))
		}
		for _, c := range spec.InitContainers {
			sidecars += stopTime(t, c)
		}
		want := main + sidecars
		require.NotNil(t, spec.TerminationGracePeriodSeconds, "Deployment %s", name)
		got := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
		require.Equal(t, want, got, "Deployment %s: terminationGracePeriodSeconds must be the sum of its stops (%s)", name, want)
	}
}

// stopTime is how long a container may take to stop after its preStop hook
// starts, from the settings the binaries document.
func stopTime(t *testing.T, c corev1.Container) time.Duration {
	t.Helper()
	var d time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		require.NotNil(t, c.Lifecycle.PreStop.Sleep, "container %s: only a preStop sleep is possible in a scratch image", c.Name)
		d += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	switch {
	case isImage(c, apiImage):
		d += envDuration(t, c, "API_SHUTDOWN_TIMEOUT", 15*time.Second) + stopSlack
	case isImage(c, relayImage):
		d += envDuration(t, c, "RELAY_SHUTDOWN_TIMEOUT", 30*time.Second) + relayHardStop + stopSlack
	default:
		require.Failf(t, "unknown container", "container %s: no shutdown rule for image %s", c.Name, c.Image)
	}
	return d
}

// checkDisruptionBudgets: every Deployment runs more than one replica and is
// covered by exactly one PodDisruptionBudget that lets a drain proceed.
func checkDisruptionBudgets(t *testing.T, m *manifests) {
	for name, d := range m.deployments {
		require.NotNil(t, d.Spec.Replicas, "Deployment %s", name)
		require.GreaterOrEqual(t, *d.Spec.Replicas, int32(2), "Deployment %s: one replica cannot survive a disruption", name)
		var covering []string
		for pdbName, pdb := range m.pdbs {
			sel, err := metaSelector(pdb.Spec.Selector.MatchLabels)
			require.NoError(t, err)
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				covering = append(covering, pdbName)
				require.NotNil(t, pdb.Spec.MaxUnavailable, "PodDisruptionBudget %s: maxUnavailable, so a drain can proceed", pdbName)
			}
		}
		require.Len(t, covering, 1, "Deployment %s: PodDisruptionBudgets covering it", name)
	}
	for pdbName, pdb := range m.pdbs {
		var selects bool
		for _, d := range m.deployments {
			sel, err := metaSelector(pdb.Spec.Selector.MatchLabels)
			require.NoError(t, err)
			selects = selects || sel.Matches(labels.Set(d.Spec.Template.Labels))
		}
		require.True(t, selects, "PodDisruptionBudget %s selects no Deployment's pods", pdbName)
	}
}

// checkService: the api Service selects the api pods, and only them, and
// targets a port the api container declares.
func checkService(t *testing.T, m *manifests) {
	svc, ok := m.services["payment-outbox-api"]
	require.True(t, ok, "no Service payment-outbox-api")
	sel, err := metaSelector(svc.Spec.Selector)
	require.NoError(t, err)
	var selected []string
	for name, d := range m.deployments {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			selected = append(selected, name)
			api := findContainer(d.Spec.Template.Spec.Containers, apiImage)
			require.NotNil(t, api, "Service %s selects Deployment %s, which runs no api", svc.Name, name)
			for _, p := range svc.Spec.Ports {
				require.True(t, declaresPort(*api, p.TargetPort.String()), "Service port %s targets %s, not a port of the api", p.Name, p.TargetPort.String())
			}
		}
	}
	require.Equal(t, []string{"payment-outbox-api"}, selected)
}

// checkMetricsOffTheService: every api container serves its metrics on a
// listener of its own (API_METRICS_ADDR), on a port it declares, and no
// Service targets that port or a relay's: the metrics, and the relay's
// probes and metrics, are for Prometheus inside the cluster, never for the
// clients the Service is for (docs/design.md, section 21).
func checkMetricsOffTheService(t *testing.T, m *manifests) {
	for name, d := range m.deployments {
		for _, c := range allContainers(d.Spec.Template.Spec) {
			if !isImage(c, apiImage) {
				continue
			}
			var metricsAddr string
			for _, e := range c.Env {
				if e.Name == "API_METRICS_ADDR" {
					metricsAddr = e.Value
				}
			}
			require.NotEmpty(t, metricsAddr, "Deployment %s container %s: no API_METRICS_ADDR; /metrics would be on the public port", name, c.Name)
			_, port, err := net.SplitHostPort(metricsAddr)
			require.NoError(t, err)
			require.True(t, declaresPort(c, port), "Deployment %s container %s: API_METRICS_ADDR port %s is not declared", name, c.Name, port)
			require.True(t, declaresPort(c, "metrics"), "Deployment %s container %s: no port named metrics", name, c.Name)
			for _, svc := range m.services {
				sel, err := metaSelector(svc.Spec.Selector)
				require.NoError(t, err)
				if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
					continue
				}
				for _, p := range svc.Spec.Ports {
					tp := p.TargetPort.String()
					for _, cp := range c.Ports {
						if cp.Name == tp || fmt.Sprint(cp.ContainerPort) == tp {
							require.NotEqual(t, fmt.Sprint(cp.ContainerPort), port, "Service %s exposes the api's metrics port", svc.Name)
						}
					}
					require.NotEqual(t, "metrics", tp, "Service %s exposes the api's metrics port", svc.Name)
					require.NotEqual(t, "relay-http", tp, "Service %s exposes a relay's probes and metrics", svc.Name)
				}
			}
		}
	}
}

// checkSecrets: every secretKeyRef names a Secret of the build and a key it has.
func checkSecrets(t *testing.T, m *manifests) {
	for where, pod := range m.podTemplates() {
		for _, c := range allContainers(pod.Spec) {
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				s, ok := m.secrets[ref.Name]
				require.True(t, ok, "%s container %s: %s refers to Secret %s, which the build does not have", where, c.Name, e.Name, ref.Name)
				_, inData := s.Data[ref.Key]
				_, inString := s.StringData[ref.Key]
				require.True(t, inData || inString, "%s container %s: Secret %s has no key %s", where, c.Name, s.Name, ref.Key)
			}
		}
	}
}

// checkMigrationJob: one Job runs `api migrate` and keeps failed pods' logs.
func checkMigrationJob(t *testing.T, m *manifests) {
	job, ok := m.jobs["payment-outbox-migrate"]
	require.True(t, ok, "no migration Job")
	spec := job.Spec.Template.Spec
	require.Len(t, spec.Containers, 1)
	c := spec.Containers[0]
	require.True(t, isImage(c, apiImage), "the migration runs the api image")
	require.Equal(t, []string{"migrate"}, c.Args)
	require.Empty(t, c.Command, "the image's entrypoint is the api binary")
	require.Equal(t, corev1.RestartPolicyNever, spec.RestartPolicy)
	require.NotNil(t, job.Spec.BackoffLimit)
	require.NotNil(t, job.Spec.ActiveDeadlineSeconds, "a migration stuck on a lock must not hang the deploy forever")
}

// checkScraping: every Deployment's pods ask Prometheus (by the
// prometheus.io annotations) to scrape /metrics on a port one of their
// containers declares, and the example PodMonitor
// (deploy/observability/podmonitor.yaml) names ports that exist, covering
// every api and relay container.
func checkScraping(t *testing.T, m *manifests) {
	pm := podMonitor(t)
	for name, d := range m.deployments {
		pod := d.Spec.Template
		a := pod.Annotations
		require.Equal(t, "true", a["prometheus.io/scrape"], "Deployment %s: prometheus.io/scrape", name)
		require.Equal(t, "/metrics", a["prometheus.io/path"], "Deployment %s: prometheus.io/path", name)
		var declared bool
		for _, c := range allContainers(pod.Spec) {
			declared = declared || declaresPort(c, a["prometheus.io/port"])
		}
		require.True(t, declared, "Deployment %s: prometheus.io/port %q is no container's port", name, a["prometheus.io/port"])

		sel, err := metaSelector(pm.Spec.Selector.MatchLabels)
		require.NoError(t, err)
		require.True(t, sel.Matches(labels.Set(pod.Labels)), "the PodMonitor selects Deployment %s's pods", name)
		for _, c := range allContainers(pod.Spec) {
			if !isImage(c, apiImage) && !isImage(c, relayImage) {
				continue
			}
			covered := slices.ContainsFunc(pm.Spec.PodMetricsEndpoints, func(e podMetricsEndpoint) bool {
				return declaresPort(c, e.Port) && e.Path == "/metrics"
			})
			require.True(t, covered, "Deployment %s container %s: no PodMonitor endpoint scrapes it", name, c.Name)
		}
	}
}

// podMetricsEndpoint and podMonitorSpec are the part of the Prometheus
// Operator's PodMonitor the check reads (its Go types would pull in the
// operator's module for two fields).
type podMetricsEndpoint struct {
	Port string `json:"port"`
	Path string `json:"path"`
}

type podMonitorSpec struct {
	Kind string `json:"kind"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		PodMetricsEndpoints []podMetricsEndpoint `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

func podMonitor(t *testing.T) podMonitorSpec {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "observability", "podmonitor.yaml"))
	require.NoError(t, err)
	var pm podMonitorSpec
	require.NoError(t, sigsyaml.Unmarshal(raw, &pm))
	require.Equal(t, "PodMonitor", pm.Kind)
	require.NotEmpty(t, pm.Spec.PodMetricsEndpoints)
	return pm
}

func allContainers(spec corev1.PodSpec) []corev1.Container {
	return slices.Concat(spec.InitContainers, spec.Containers)
}

func isSidecar(c corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// isImage reports whether c runs image (any registry, any tag).
func isImage(c corev1.Container, image string) bool {
	name, _ := splitImage(c.Image)
	return name == image || strings.HasSuffix(name, "/"+image)
}

// splitImage splits an image reference into its name and tag (or digest);
// a registry's port is part of the name.
func splitImage(ref string) (name, tag string) {
	if name, digest, ok := strings.Cut(ref, "@"); ok {
		return name, digest
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

func findContainer(cs []corev1.Container, image string) *corev1.Container {
	for i := range cs {
		if isImage(cs[i], image) {
			return &cs[i]
		}
	}
	return nil
}

func declaresPort(c corev1.Container, port string) bool {
	for _, p := range c.Ports {
		if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
			return true
		}
	}
	return false
}

func envDuration(t *testing.T, c corev1.Container, name string, def time.Duration) time.Duration {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			d, err := time.ParseDuration(e.Value)
			require.NoError(t, err, "container %s: %s", c.Name, name)
			return d
		}
	}
	return def
}

func effective(container, pod *bool) bool {
	if container != nil {
		return *container
	}
	return pod != nil && *pod
}

func metaSelector(matchLabels map[string]string) (labels.Selector, error) {
	if len(matchLabels) == 0 {
		return nil, fmt.Errorf("empty selector selects everything")
	}
	return labels.SelectorFromSet(matchLabels), nil
}
