// Command schedref is the reference side of the webhook's differential scheduling test.
//
// The webhook decides where a pod can land with its own Rust port of two kube-scheduler filters:
// required node affinity (nodeSelector plus requiredDuringSchedulingIgnoredDuringExecution) and
// taints with effect NoSchedule/NoExecute against the pod's tolerations. This program answers the
// same questions with the Go helpers the kube-scheduler itself uses, from
// k8s.io/component-helpers, so a Rust test can feed both the same generated pods and nodes and
// compare the answers.
//
// Input on stdin:
//
//	{"cases": [{"pod": <v1.Pod>, "node": <v1.Node>}, ...],
//	 "taintComparisonOperators": false}
//
// Output on stdout, one result per case, in order:
//
//	{"results": [{"affinity": true, "taints": false}, {"affinity": false, "taints": true,
//	  "error": "..."}, ...]}
//
// affinity is nodeaffinity.GetRequiredNodeAffinity(pod).Match(node); when Match reports an error
// (an invalid requirement, e.g. Gt with a non-integer value) affinity is false and error holds
// the message. taints is true when FindMatchingUntoleratedTaint, filtered to NoSchedule and
// NoExecute exactly as the TaintToleration filter plugin does, finds no untolerated taint.
// taintComparisonOperators mirrors the alpha TaintTolerationComparisonOperators feature gate
// (Lt/Gt tolerations); it defaults to off, as in a default kube-scheduler.
//
// Input that cannot be decoded is a bug in the calling test: the program then writes the reason
// to stderr and exits with status 2.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	corev1helper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	sigsjson "sigs.k8s.io/json"
)

type request struct {
	Cases                    []testCase `json:"cases"`
	TaintComparisonOperators bool       `json:"taintComparisonOperators"`
}

type testCase struct {
	Pod  *v1.Pod  `json:"pod"`
	Node *v1.Node `json:"node"`
}

type response struct {
	Results []result `json:"results"`
}

type result struct {
	Affinity bool   `json:"affinity"`
	Taints   bool   `json:"taints"`
	Error    string `json:"error,omitempty"`
}

// doNotSchedule keeps the taints the scheduler's TaintToleration filter looks at.
func doNotSchedule(t *v1.Taint) bool {
	return t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute
}

func evaluate(pod *v1.Pod, node *v1.Node, comparisonOperators bool) result {
	var r result
	ok, err := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)
	if err != nil {
		r.Affinity = false
		r.Error = err.Error()
	} else {
		r.Affinity = ok
	}
	// The helper logs unparsable Lt/Gt values; that is expected input here, not news.
	_, untolerated := corev1helper.FindMatchingUntoleratedTaint(logr.Discard(),
		node.Spec.Taints, pod.Spec.Tolerations, doNotSchedule, comparisonOperators)
	r.Taints = !untolerated
	return r
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("empty input: expected {\"cases\": [...]}")
	}
	// Case-sensitive field names, as kube-apiserver decodes objects.
	var req request
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, &req); err != nil {
		return fmt.Errorf("decoding input: %w", err)
	}
	if req.Cases == nil {
		return fmt.Errorf("input has no \"cases\" array")
	}
	resp := response{Results: make([]result, 0, len(req.Cases))}
	for i, c := range req.Cases {
		if c.Pod == nil || c.Node == nil {
			return fmt.Errorf("case %d: both \"pod\" and \"node\" are required", i)
		}
		resp.Results = append(resp.Results, evaluate(c.Pod, c.Node, req.TaintComparisonOperators))
	}
	encoded, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encoding output: %w", err)
	}
	w := bufio.NewWriter(out)
	w.Write(encoded)
	w.WriteByte('\n')
	return w.Flush()
}

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: schedref < cases.json > results.json (no arguments)")
		os.Exit(2)
	}
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "schedref:", err)
		os.Exit(2)
	}
}
