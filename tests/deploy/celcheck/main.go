// Command celcheck compiles and evaluates the matchConditions of the
// rendered webhook configurations with the Kubernetes API server's own CEL
// code (k8s.io/apiserver), against a table of admission requests.
//
// It checks what the deploy manifests promise:
//   - every expression compiles as the API server validates it on create
//     (NewExpressions environment, for the oldest and newest supported
//     compatibility versions);
//   - the webhook is called exactly for objects whose pod spec or pod
//     template names a runtimeClassName (and, on UPDATE, changes the
//     template), for every kind the rules match;
//   - no case ends in an evaluation error, which would fall back to
//     failurePolicy;
//   - the runtime cost stays far below the API server's budget.
//
// Usage: celcheck RENDERED.yaml [...]   (output of `kubectl kustomize`)
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"
)

// Each case's total cost must stay below budget/costHeadroom.
const costHeadroom = 100

type webhook struct {
	config     string
	name       string
	conditions []admissionv1.MatchCondition
	failure    *admissionv1.FailurePolicyType
}

type testCase struct {
	name      string
	gvr       schema.GroupVersionResource
	gvk       schema.GroupVersionKind
	op        admission.Operation
	object    *fixture
	oldObject *fixture
	want      bool
}

// fixture is one object in two forms: typed, as the API server holds it
// (fields with omitempty vanish, struct fields are always present), and
// the raw JSON map, where any field can be missing. Conditions must be
// right and error-free for both, so a missing has() guard is caught even
// where the typed form happens to hide it.
type fixture struct {
	typed runtime.Object
	raw   map[string]any
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: celcheck RENDERED.yaml [...]")
		os.Exit(2)
	}
	var hooks []webhook
	for _, path := range os.Args[1:] {
		found, err := readWebhooks(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "celcheck: %s: %v\n", path, err)
			os.Exit(2)
		}
		hooks = append(hooks, found...)
	}
	if len(hooks) == 0 {
		fmt.Fprintln(os.Stderr, "celcheck: no webhook configurations found")
		os.Exit(2)
	}

	failed := 0
	cases := table()
	for _, h := range hooks {
		label := fmt.Sprintf("%s %s", h.config, h.name)
		failedBefore := failed
		if len(h.conditions) == 0 {
			fmt.Printf("FAIL %s: no matchConditions\n", label)
			failed++
			continue
		}
		// As the API server validates a new or changed configuration.
		for _, v := range []*utilversion.Version{
			utilversion.MajorMinor(1, 31), // what a 1.32 API server accepts
			environment.DefaultCompatibilityVersion(),
		} {
			compiler := plugincel.NewCompiler(environment.MustBaseEnvSet(v))
			for _, mc := range h.conditions {
				res := compiler.CompileCELExpression(
					&matchconditions.MatchCondition{Name: mc.Name, Expression: mc.Expression},
					plugincel.OptionalVariableDeclarations{HasAuthorizer: true},
					environment.NewExpressions)
				if res.Error != nil {
					fmt.Printf("FAIL %s: condition %q does not compile (compatibility %s): %v\n", label, mc.Name, v, res.Error)
					failed++
				}
			}
		}
		if failed > failedBefore {
			continue
		}
		// As the API server's webhook dispatcher evaluates them.
		exprs := make([]plugincel.ExpressionAccessor, len(h.conditions))
		for i, mc := range h.conditions {
			exprs[i] = &matchconditions.MatchCondition{Name: mc.Name, Expression: mc.Expression}
		}
		evaluator := plugincel.NewConditionCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion())).
			CompileCondition(exprs, plugincel.OptionalVariableDeclarations{HasAuthorizer: true}, environment.StoredExpressions)
		matcher := matchconditions.NewMatcher(evaluator, h.failure, "webhook", "admit", h.name)

		maxCost := int64(0)
		for _, c := range cases {
			for _, form := range []string{"typed", "raw"} {
				tc := c
				tc.name = c.name + " [" + form + "]"
				attr := versioned(c, form == "raw")
				result := matcher.Match(context.Background(), attr, nil, nil)
				if result.Error != nil {
					fmt.Printf("FAIL %s: %s: evaluation error (failurePolicy would decide): %v\n", label, tc.name, result.Error)
					failed++
					continue
				}
				// Errors are hidden by Match when a condition is false; look at
				// each condition directly.
				evals, remaining, err := evaluator.ForInput(context.Background(), attr,
					plugincel.CreateAdmissionRequest(attr.Attributes, metav1.GroupVersionResource(attr.GetResource()), metav1.GroupVersionKind(attr.VersionedKind)),
					plugincel.OptionalVariableBindings{}, nil, celconfig.RuntimeCELCostBudgetMatchConditions)
				if err != nil {
					fmt.Printf("FAIL %s: %s: %v\n", label, tc.name, err)
					failed++
					continue
				}
				for _, e := range evals {
					if e.Error != nil {
						fmt.Printf("FAIL %s: %s: condition %q errors: %v\n", label, tc.name, e.ExpressionAccessor.GetExpression(), e.Error)
						failed++
					}
				}
				if used := celconfig.RuntimeCELCostBudgetMatchConditions - remaining; used > maxCost {
					maxCost = used
				}
				if result.Matches != tc.want {
					why := ""
					if result.FailedConditionName != "" {
						why = " (false: " + result.FailedConditionName + ")"
					}
					fmt.Printf("FAIL %s: %s: webhook called=%v, want %v%s\n", label, tc.name, result.Matches, tc.want, why)
					failed++
				}
			}
		}
		limit := int64(celconfig.RuntimeCELCostBudgetMatchConditions / costHeadroom)
		if maxCost > limit {
			fmt.Printf("FAIL %s: highest runtime cost %d exceeds %d (1/%d of the budget)\n", label, maxCost, limit, costHeadroom)
			failed++
		}
		if failed > failedBefore {
			continue
		}
		fmt.Printf("ok   %s: %d conditions, %d cases (typed and raw objects), highest runtime cost %d of %d\n",
			label, len(h.conditions), len(cases), maxCost, celconfig.RuntimeCELCostBudgetMatchConditions)
	}
	if failed > 0 {
		fmt.Printf("celcheck: %d failure(s)\n", failed)
		os.Exit(1)
	}
}

// readWebhooks returns the webhooks of every Mutating/ValidatingWebhookConfiguration in a YAML stream.
func readWebhooks(path string) ([]webhook, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	reader := k8syaml.NewYAMLReader(bufio.NewReader(f))
	var out []webhook
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, err
		}
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			var c admissionv1.MutatingWebhookConfiguration
			if err := yaml.UnmarshalStrict(doc, &c); err != nil {
				return nil, err
			}
			for _, w := range c.Webhooks {
				out = append(out, webhook{config: meta.Kind + "/" + c.Name, name: w.Name, conditions: w.MatchConditions, failure: w.FailurePolicy})
			}
		case "ValidatingWebhookConfiguration":
			var c admissionv1.ValidatingWebhookConfiguration
			if err := yaml.UnmarshalStrict(doc, &c); err != nil {
				return nil, err
			}
			for _, w := range c.Webhooks {
				out = append(out, webhook{config: meta.Kind + "/" + c.Name, name: w.Name, conditions: w.MatchConditions, failure: w.FailurePolicy})
			}
		}
	}
}

func versioned(tc testCase, raw bool) *admission.VersionedAttributes {
	pick := func(f *fixture) runtime.Object {
		switch {
		case f == nil:
			return nil
		case raw:
			return &unstructured.Unstructured{Object: runtime.DeepCopyJSON(f.raw)}
		default:
			return f.typed
		}
	}
	obj, old := pick(tc.object), pick(tc.oldObject)
	attr := admission.NewAttributesRecord(obj, old, tc.gvk, "team-a", "x", tc.gvr, "", tc.op, nil, false,
		&user.DefaultInfo{Name: "alice"})
	return &admission.VersionedAttributes{
		Attributes:         attr,
		VersionedKind:      tc.gvk,
		VersionedObject:    obj,
		VersionedOldObject: old,
	}
}

// decode parses JSON into a typed object, exactly as the API server holds
// it before converting it to the unstructured form CEL sees (omitempty
// fields vanish, as they do for real requests).
func decode[T any, PT interface {
	*T
	runtime.Object
}](js string) *fixture {
	var v T
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		panic(fmt.Sprintf("bad fixture %s: %v", js, err))
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(js), &raw); err != nil {
		panic(fmt.Sprintf("bad fixture %s: %v", js, err))
	}
	return &fixture{typed: PT(&v), raw: raw}
}

// podSpec returns a pod spec in JSON; runtimeClass "" leaves the field out.
func podSpec(runtimeClass string, image string) string {
	rc := ""
	if runtimeClass != "" {
		rc = fmt.Sprintf(`"runtimeClassName": %q,`, runtimeClass)
	}
	return fmt.Sprintf(`{%s "hostUsers": false, "containers": [{"name": "c", "image": %q,
		"securityContext": {"readOnlyRootFilesystem": true}}]}`, rc, image)
}

// bigPodSpec is a large but plausible pod spec, to measure the cost of
// comparing templates on UPDATE.
func bigPodSpec(runtimeClass, image string) string {
	var containers []string
	for i := 0; i < 30; i++ {
		var env []string
		for j := 0; j < 40; j++ {
			env = append(env, fmt.Sprintf(`{"name": "VAR_%d_%d", "value": "value-%d-%d-abcdefghijklmnopqrstuvwxyz"}`, i, j, i, j))
		}
		containers = append(containers, fmt.Sprintf(`{"name": "c%d", "image": %q, "args": ["--a", "--b", "--c"],
			"env": [%s], "securityContext": {"readOnlyRootFilesystem": true},
			"volumeMounts": [{"name": "v", "mountPath": "/v%d"}]}`, i, image, strings.Join(env, ","), i))
	}
	return fmt.Sprintf(`{"runtimeClassName": %q, "containers": [%s], "volumes": [{"name": "v", "emptyDir": {}}]}`,
		runtimeClass, strings.Join(containers, ","))
}

func template(spec string) string {
	return fmt.Sprintf(`{"metadata": {"labels": {"app": "x"}}, "spec": %s}`, spec)
}

func table() []testCase {
	var (
		pods         = corev1.SchemeGroupVersion.WithResource("pods")
		podtemplates = corev1.SchemeGroupVersion.WithResource("podtemplates")
		deployments  = appsv1.SchemeGroupVersion.WithResource("deployments")
		statefulsets = appsv1.SchemeGroupVersion.WithResource("statefulsets")
		daemonsets   = appsv1.SchemeGroupVersion.WithResource("daemonsets")
		replicasets  = appsv1.SchemeGroupVersion.WithResource("replicasets")
		jobs         = batchv1.SchemeGroupVersion.WithResource("jobs")
		cronjobs     = batchv1.SchemeGroupVersion.WithResource("cronjobs")
	)
	sel := `"selector": {"matchLabels": {"app": "x"}}`
	deployment := func(replicas int, spec string, extraMeta string) *fixture {
		return decode[appsv1.Deployment](fmt.Sprintf(`{"metadata": {"name": "x"%s}, "spec": {"replicas": %d, %s, "template": %s}}`,
			extraMeta, replicas, sel, template(spec)))
	}
	statefulset := func(spec string) *fixture {
		return decode[appsv1.StatefulSet](fmt.Sprintf(`{"metadata": {"name": "x"}, "spec": {%s, "template": %s}}`, sel, template(spec)))
	}
	daemonset := func(spec string) *fixture {
		return decode[appsv1.DaemonSet](fmt.Sprintf(`{"metadata": {"name": "x"}, "spec": {%s, "template": %s}}`, sel, template(spec)))
	}
	replicaset := func(spec string) *fixture {
		return decode[appsv1.ReplicaSet](fmt.Sprintf(`{"metadata": {"name": "x"}, "spec": {%s, "template": %s}}`, sel, template(spec)))
	}
	job := func(spec string) *fixture {
		return decode[batchv1.Job](fmt.Sprintf(`{"metadata": {"name": "x"}, "spec": {"template": %s}}`, template(spec)))
	}
	cronjob := func(schedule, spec string) *fixture {
		return decode[batchv1.CronJob](fmt.Sprintf(`{"metadata": {"name": "x"}, "spec": {"schedule": %q,
			"jobTemplate": {"spec": {"template": %s}}}}`, schedule, template(spec)))
	}
	podtemplate := func(label, spec string) *fixture {
		return decode[corev1.PodTemplate](fmt.Sprintf(`{"metadata": {"name": "x", "labels": {"l": %q}}, "template": %s}`, label, template(spec)))
	}
	pod := func(spec string) *fixture {
		return decode[corev1.Pod](fmt.Sprintf(`{"metadata": {"name": "x"}, "spec": %s}`, spec))
	}
	gvk := func(gvr schema.GroupVersionResource, kind string) schema.GroupVersionKind {
		return gvr.GroupVersion().WithKind(kind)
	}
	sysbox := podSpec("sysbox-runc", "docker:dind")
	sysbox2 := podSpec("sysbox-runc", "docker:dind-rootless")
	renamed := podSpec("my-sysbox", "docker:dind")
	plain := podSpec("", "nginx")
	big, big2 := bigPodSpec("sysbox-runc", "a"), bigPodSpec("sysbox-runc", "b")

	create := admission.Create
	update := admission.Update
	return []testCase{
		// Pods.
		{"pod without runtimeClassName", pods, gvk(pods, "Pod"), create, pod(plain), nil, false},
		{"pod with sysbox-runc", pods, gvk(pods, "Pod"), create, pod(sysbox), nil, true},
		{"pod with another RuntimeClass (the webhook checks the handler)", pods, gvk(pods, "Pod"), create, pod(renamed), nil, true},
		{"pod with an empty spec", pods, gvk(pods, "Pod"), create, decode[corev1.Pod](`{"metadata": {"name": "x"}}`), nil, false},
		{"large sysbox pod", pods, gvk(pods, "Pod"), create, pod(big), nil, true},

		// Workloads with spec.template.
		{"deployment without runtimeClassName", deployments, gvk(deployments, "Deployment"), create, deployment(1, plain, ""), nil, false},
		{"deployment with sysbox-runc", deployments, gvk(deployments, "Deployment"), create, deployment(1, sysbox, ""), nil, true},
		{"deployment update, template changed", deployments, gvk(deployments, "Deployment"), update, deployment(1, sysbox2, ""), deployment(1, sysbox, ""), true},
		{"deployment update, runtimeClassName added", deployments, gvk(deployments, "Deployment"), update, deployment(1, sysbox, ""), deployment(1, plain, ""), true},
		{"deployment update, runtimeClassName removed", deployments, gvk(deployments, "Deployment"), update, deployment(1, plain, ""), deployment(1, sysbox, ""), false},
		{"deployment update, replicas only", deployments, gvk(deployments, "Deployment"), update, deployment(3, sysbox, ""), deployment(1, sysbox, ""), false},
		{"deployment update, finalizer removed while deleting", deployments, gvk(deployments, "Deployment"), update,
			deployment(1, sysbox, `, "deletionTimestamp": "2026-01-01T00:00:00Z"`),
			deployment(1, sysbox, `, "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["foregroundDeletion"]`), false},
		{"deployment update of a plain workload", deployments, gvk(deployments, "Deployment"), update, deployment(2, plain, ""), deployment(1, nginxVariant(), ""), false},
		{"large deployment update, template changed", deployments, gvk(deployments, "Deployment"), update, deployment(1, big2, ""), deployment(1, big, ""), true},
		{"large deployment update, template unchanged", deployments, gvk(deployments, "Deployment"), update, deployment(2, big, ""), deployment(1, big, ""), false},
		{"statefulset without runtimeClassName", statefulsets, gvk(statefulsets, "StatefulSet"), create, statefulset(plain), nil, false},
		{"statefulset with sysbox-runc", statefulsets, gvk(statefulsets, "StatefulSet"), create, statefulset(sysbox), nil, true},
		{"statefulset update, template changed", statefulsets, gvk(statefulsets, "StatefulSet"), update, statefulset(sysbox2), statefulset(sysbox), true},
		{"daemonset without runtimeClassName", daemonsets, gvk(daemonsets, "DaemonSet"), create, daemonset(plain), nil, false},
		{"daemonset with sysbox-runc", daemonsets, gvk(daemonsets, "DaemonSet"), create, daemonset(sysbox), nil, true},
		{"daemonset update, unchanged", daemonsets, gvk(daemonsets, "DaemonSet"), update, daemonset(sysbox), daemonset(sysbox), false},
		{"replicaset without runtimeClassName", replicasets, gvk(replicasets, "ReplicaSet"), create, replicaset(plain), nil, false},
		{"replicaset with sysbox-runc", replicasets, gvk(replicasets, "ReplicaSet"), create, replicaset(sysbox), nil, true},
		{"job without runtimeClassName", jobs, gvk(jobs, "Job"), create, job(plain), nil, false},
		{"job with sysbox-runc", jobs, gvk(jobs, "Job"), create, job(sysbox), nil, true},
		{"job update, unchanged template", jobs, gvk(jobs, "Job"), update, job(sysbox), job(sysbox), false},

		// CronJobs: spec.jobTemplate.spec.template.
		{"cronjob without runtimeClassName", cronjobs, gvk(cronjobs, "CronJob"), create, cronjob("* * * * *", plain), nil, false},
		{"cronjob with sysbox-runc", cronjobs, gvk(cronjobs, "CronJob"), create, cronjob("* * * * *", sysbox), nil, true},
		{"cronjob update, schedule only", cronjobs, gvk(cronjobs, "CronJob"), update, cronjob("0 * * * *", sysbox), cronjob("* * * * *", sysbox), false},
		{"cronjob update, template changed", cronjobs, gvk(cronjobs, "CronJob"), update, cronjob("* * * * *", sysbox2), cronjob("* * * * *", sysbox), true},
		{"cronjob with an empty spec", cronjobs, gvk(cronjobs, "CronJob"), create, decode[batchv1.CronJob](`{"metadata": {"name": "x"}}`), nil, false},

		// PodTemplates: template.spec.
		{"podtemplate without runtimeClassName", podtemplates, gvk(podtemplates, "PodTemplate"), create, podtemplate("a", plain), nil, false},
		{"podtemplate with sysbox-runc", podtemplates, gvk(podtemplates, "PodTemplate"), create, podtemplate("a", sysbox), nil, true},
		{"podtemplate update, labels only", podtemplates, gvk(podtemplates, "PodTemplate"), update, podtemplate("b", sysbox), podtemplate("a", sysbox), false},
		{"podtemplate update, template changed", podtemplates, gvk(podtemplates, "PodTemplate"), update, podtemplate("a", sysbox2), podtemplate("a", sysbox), true},
		{"podtemplate without a template", podtemplates, gvk(podtemplates, "PodTemplate"), create, decode[corev1.PodTemplate](`{"metadata": {"name": "x"}}`), nil, false},
	}
}

func nginxVariant() string { return podSpec("", "nginx:1.27") }
