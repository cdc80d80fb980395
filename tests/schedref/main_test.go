package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// Hand-written cases whose answers follow from the Kubernetes documentation, so this test checks
// that the program wires the scheduler helpers up the way the differential test expects.
func TestRun(t *testing.T) {
	type want struct {
		affinity, taints, wantError bool
	}
	cases := []struct {
		name string
		pod  string
		node string
		want want
	}{
		{
			name: "In expression matches a listed value",
			pod:  `{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"zone","operator":"In","values":["a","b"]}]}]}}}}}`,
			node: `{"metadata":{"name":"n1","labels":{"zone":"b"}}}`,
			want: want{affinity: true, taints: true},
		},
		{
			name: "In expression rejects an unlisted value",
			pod:  `{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"zone","operator":"In","values":["a","b"]}]}]}}}}}`,
			node: `{"metadata":{"name":"n1","labels":{"zone":"c"}}}`,
			want: want{affinity: false, taints: true},
		},
		{
			name: "NotIn matches a node without the label",
			pod:  `{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"sysbox-ro.dev/relaxed-read-only","operator":"NotIn","values":["false"]}]}]}}}}}`,
			node: `{"metadata":{"name":"n1","labels":{"other":"x"}}}`,
			want: want{affinity: true, taints: true},
		},
		{
			name: "Gt with a non-integer value is an error",
			pod:  `{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"cores","operator":"Gt","values":["many"]}]}]}}}}}`,
			node: `{"metadata":{"name":"n1","labels":{"cores":"8"}}}`,
			want: want{affinity: false, taints: true, wantError: true},
		},
		{
			name: "Gt against a non-integer node label does not match",
			pod:  `{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"cores","operator":"Gt","values":["4"]}]}]}}}}}`,
			node: `{"metadata":{"name":"n1","labels":{"cores":"eight"}}}`,
			want: want{affinity: false, taints: true},
		},
		{
			name: "matchFields on metadata.name",
			pod:  `{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"In","values":["n2"]}]}]}}}}}`,
			node: `{"metadata":{"name":"n2"}}`,
			want: want{affinity: true, taints: true},
		},
		{
			name: "nodeSelector and affinity terms are ANDed, terms are ORed",
			pod:  `{"spec":{"nodeSelector":{"pool":"sysbox"},"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"In","values":["other"]}]},{"matchExpressions":[{"key":"zone","operator":"Exists"}]}]}}}}}`,
			node: `{"metadata":{"name":"n3","labels":{"pool":"sysbox","zone":"a"}}}`,
			want: want{affinity: true, taints: true},
		},
		{
			name: "nodeSelector mismatch",
			pod:  `{"spec":{"nodeSelector":{"pool":"sysbox"}}}`,
			node: `{"metadata":{"name":"n1","labels":{"pool":"general"}}}`,
			want: want{affinity: false, taints: true},
		},
		{
			name: "empty-key Exists toleration tolerates every taint",
			pod:  `{"spec":{"tolerations":[{"operator":"Exists"}]}}`,
			node: `{"metadata":{"name":"n1"},"spec":{"taints":[{"key":"a","value":"1","effect":"NoSchedule"},{"key":"b","effect":"NoExecute"}]}}`,
			want: want{affinity: true, taints: true},
		},
		{
			name: "untolerated NoExecute taint",
			pod:  `{"spec":{"tolerations":[{"key":"a","operator":"Equal","value":"1","effect":"NoSchedule"}]}}`,
			node: `{"metadata":{"name":"n1"},"spec":{"taints":[{"key":"a","value":"1","effect":"NoSchedule"},{"key":"b","effect":"NoExecute"}]}}`,
			want: want{affinity: true, taints: false},
		},
		{
			name: "PreferNoSchedule taints do not filter",
			pod:  `{"spec":{}}`,
			node: `{"metadata":{"name":"n1"},"spec":{"taints":[{"key":"a","effect":"PreferNoSchedule"}]}}`,
			want: want{affinity: true, taints: true},
		},
		{
			name: "Gt toleration does not match while the comparison-operator gate is off",
			pod:  `{"spec":{"tolerations":[{"key":"a","operator":"Gt","value":"1","effect":"NoSchedule"}]}}`,
			node: `{"metadata":{"name":"n1"},"spec":{"taints":[{"key":"a","value":"5","effect":"NoSchedule"}]}}`,
			want: want{affinity: true, taints: false},
		},
	}

	var in strings.Builder
	in.WriteString(`{"cases":[`)
	for i, c := range cases {
		if i > 0 {
			in.WriteString(",")
		}
		in.WriteString(`{"pod":` + c.pod + `,"node":` + c.node + `}`)
	}
	in.WriteString(`]}`)

	var out bytes.Buffer
	if err := run(strings.NewReader(in.String()), &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	var resp struct {
		Results []struct {
			Affinity *bool  `json:"affinity"`
			Taints   *bool  `json:"taints"`
			Error    string `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if len(resp.Results) != len(cases) {
		t.Fatalf("got %d results for %d cases", len(resp.Results), len(cases))
	}
	for i, c := range cases {
		got := resp.Results[i]
		if got.Affinity == nil || got.Taints == nil {
			t.Errorf("%s: affinity and taints must always be present: %s", c.name, out.String())
			continue
		}
		if *got.Affinity != c.want.affinity || *got.Taints != c.want.taints || (got.Error != "") != c.want.wantError {
			t.Errorf("%s: got affinity=%v taints=%v error=%q, want affinity=%v taints=%v error=%v",
				c.name, *got.Affinity, *got.Taints, got.Error, c.want.affinity, c.want.taints, c.want.wantError)
		}
	}
}

func TestComparisonOperatorGate(t *testing.T) {
	in := `{"taintComparisonOperators":true,"cases":[{"pod":{"spec":{"tolerations":[{"key":"a","operator":"Gt","value":"1","effect":"NoSchedule"}]}},"node":{"metadata":{"name":"n1"},"spec":{"taints":[{"key":"a","value":"5","effect":"NoSchedule"}]}}}]}`
	var out bytes.Buffer
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got, want := strings.TrimSpace(out.String()), `{"results":[{"affinity":true,"taints":true}]}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestRejectsUnusableInput(t *testing.T) {
	for _, in := range []string{
		``,
		`not json`,
		`{}`,
		`{"cases":[{"pod":{}}]}`,
		`{"Cases":[]}`,
	} {
		if err := run(strings.NewReader(in), &bytes.Buffer{}); err == nil {
			t.Errorf("input %q: want an error", in)
		}
	}
}

func TestEmptyCaseList(t *testing.T) {
	var out bytes.Buffer
	if err := run(strings.NewReader(`{"cases":[]}`), &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := strings.TrimSpace(out.String()); got != `{"results":[]}` {
		t.Errorf("got %s", got)
	}
}
