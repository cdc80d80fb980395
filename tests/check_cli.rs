//! `sysbox-ro-webhook check` from the outside: the binary run on the
//! fixtures in `tests/data/manifests/` against `examples/cluster-state.yaml`
//! and `tests/data/cluster/`, with the expected verdict of every object, the
//! exit statuses, stdin, `--mutated-out`, and snapshots of `--help` and of
//! every output format.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const MANIFESTS: &str = "tests/data/manifests";
const CLUSTER: &str = "examples/cluster-state.yaml";
const TAINTED: &str = "tests/data/cluster/tainted-sysbox-pool.yaml";

/// The binary with a clean environment (no SYSBOXRO_* settings, no colour
/// hints, a fixed help width), run from the crate root.
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sysbox-ro-webhook"));
    c.env_clear().env("COLUMNS", "100").current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run_with(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = bin();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().expect("run sysbox-ro-webhook");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn run(args: &[&str]) -> Output {
    run_with(args, None)
}

fn status(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn json_report(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["check", "-o", "json"];
    all.extend_from_slice(args);
    let o = run(&all);
    let report = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    (status(&o), report)
}

// ---------------------------------------------------------------- help

#[test]
fn help_of_every_subcommand() {
    for sub in [&[][..], &["serve"], &["check"], &["audit"], &["certs"], &["agent"], &["explain"], &["version"]] {
        let mut args: Vec<&str> = sub.to_vec();
        args.push("--help");
        let o = run(&args);
        assert_eq!(status(&o), 0, "{}", stderr(&o));
        let name = if sub.is_empty() { "help".to_owned() } else { format!("help_{}", sub[0]) };
        insta::assert_snapshot!(name, stdout(&o));
    }
}

// ---------------------------------------------------------------- verdicts

/// One expected result: file (under tests/data/manifests), document, List
/// item, kind, namespace, name, verdict, rule ids, whether a patch is made.
type Row = (
    &'static str,
    u64,
    Option<u64>,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    bool,
);

/// Every object of the fixtures against examples/cluster-state.yaml: pools
/// ci-relaxed (flag), ci-strict (no flag), general (no Sysbox); namespace
/// sandbox in mode warn; RuntimeClass sysbox-runc selects sysbox-runtime=running.
const WITH_CLUSTER: &[Row] = &[
    ("broken.yaml", 0, None, "ReplicaSet", "default", "dind-bad-env", "deny", &["sysbox-env"], false),
    ("broken.yaml", 1, None, "", "", "", "error", &[], false),
    ("broken.yaml", 2, None, "ConfigMap", "", "after-the-broken-one", "skip", &[], false),
    (
        "cronjob-nightly.yaml",
        0,
        None,
        "CronJob",
        "default",
        "nightly-image-build",
        "warn",
        &["relaxed-read-only-partial"],
        false,
    ),
    (
        "daemonset-node-agent.yaml",
        0,
        None,
        "DaemonSet",
        "monitoring",
        "sysbox-node-agent",
        "deny",
        &["sysbox-unsupported-setting"],
        false,
    ),
    ("deployment-ci-runner.yaml", 0, None, "Deployment", "ci", "gitlab-runner-dind", "allow", &[], false),
    ("engine-error.yaml", 0, None, "Deployment", "default", "wrong-types", "error", &[], false),
    ("helm-ci-stack.yaml", 0, None, "ServiceAccount", "sandbox", "ci-stack", "skip", &[], false),
    ("helm-ci-stack.yaml", 1, None, "ConfigMap", "sandbox", "ci-stack-config", "skip", &[], false),
    ("helm-ci-stack.yaml", 2, None, "Service", "sandbox", "ci-stack", "skip", &[], false),
    // Namespace sandbox is labelled mode=warn; a Deployment template is judged, not patched.
    // Its envFrom ConfigMap could hold SYSBOX_* keys the webhook cannot read: said, not guessed.
    (
        "helm-ci-stack.yaml",
        3,
        None,
        "Deployment",
        "sandbox",
        "ci-stack-dind",
        "warn",
        &["sysbox-env-unverified", "relaxed-read-only-partial"],
        false,
    ),
    ("helm-ci-stack.yaml", 4, None, "Pod", "sandbox", "ci-stack-test-connection", "skip", &[], false),
    ("job-migrate.yaml", 0, None, "Job", "payments", "db-migrate", "skip", &[], false),
    ("kube-system/pod-exempt.yml", 0, None, "Pod", "kube-system", "sysbox-debug", "skip", &[], false),
    ("list-pods.yaml", 0, Some(0), "Pod", "default", "strict-dind", "deny", &["relaxed-read-only-missing"], false),
    ("list-pods.yaml", 0, Some(1), "Pod", "default", "web", "skip", &[], false),
    ("list-pods.yaml", 0, Some(2), "Pod", "sandbox", "strict-dind", "warn", &["relaxed-read-only-missing"], true),
    // Allowed only because the RuntimeClass's nodeSelector is merged into the raw pod.
    ("pod-affinity-merged.yaml", 0, None, "Pod", "default", "dind-affinity", "allow", &[], true),
    ("pod-dind.yaml", 0, None, "Pod", "default", "dind", "allow", &[], true),
    ("pod-generate-name.json", 0, None, "Pod", "default", "json-dind-", "allow", &[], true),
    ("pod-mixed-pools.yaml", 0, None, "Pod", "default", "dind-anywhere", "warn", &["relaxed-read-only-partial"], true),
    ("podtemplate.yaml", 0, None, "PodTemplate", "ci", "dind-template", "warn", &["sysbox-user-namespace"], false),
    (
        "statefulset-buildkit.yaml",
        0,
        None,
        "StatefulSet",
        "build",
        "buildkitd",
        "deny",
        &["relaxed-read-only-missing"],
        false,
    ),
];

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// A [`Row`] as read from a report.
type Got = (String, u64, Option<u64>, String, String, String, String, Vec<String>, bool);

fn rows_of(report: &Value) -> Vec<Got> {
    report["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| {
            let file = str_of(&o["file"]);
            let rel = file.strip_prefix(&format!("{MANIFESTS}/")).unwrap_or(file).to_owned();
            let rules = o["findings"].as_array().unwrap().iter().map(|f| str_of(&f["rule"]).to_owned()).collect();
            (
                rel,
                o["document"].as_u64().unwrap(),
                o["item"].as_u64(),
                str_of(&o["kind"]).to_owned(),
                str_of(&o["namespace"]).to_owned(),
                str_of(&o["name"]).to_owned(),
                str_of(&o["verdict"]).to_owned(),
                rules,
                !o["patch"].as_array().unwrap().is_empty(),
            )
        })
        .collect()
}

fn expected(rows: &[Row]) -> Vec<Got> {
    rows.iter()
        .map(|r| {
            let rules = r.7.iter().map(|s| s.to_string()).collect();
            (r.0.into(), r.1, r.2, r.3.into(), r.4.into(), r.5.into(), r.6.into(), rules, r.8)
        })
        .collect()
}

#[test]
fn folder_of_realistic_manifests_gets_the_expected_verdicts() {
    let (code, report) = json_report(&["-f", MANIFESTS, "--cluster-state", CLUSTER]);
    assert_eq!(rows_of(&report), expected(WITH_CLUSTER));
    let totals = &report["totals"];
    assert_eq!(
        (totals["files"].as_u64(), totals["documents"].as_u64(), totals["objects"].as_u64()),
        (Some(15), Some(21), Some(23)),
        "README.md is not read; the comment-only Helm document is not counted; the broken document is an entry"
    );
    assert_eq!((totals["deny"].as_u64(), totals["error"].as_u64()), (Some(4), Some(2)));
    assert_eq!(totals["nodePoolsEvaluated"], true);
    assert_eq!(code, 1);
    assert_eq!(totals["exitCode"], 1);
}

#[test]
fn patches_are_the_annotation_on_pods_only() {
    let (_, report) = json_report(&["-f", MANIFESTS, "--cluster-state", CLUSTER]);
    for o in report["objects"].as_array().unwrap() {
        let patch = o["patch"].as_array().unwrap();
        if patch.is_empty() {
            continue;
        }
        assert_eq!(o["kind"], "Pod", "{o}");
        let paths: Vec<&str> = patch.iter().map(|p| str_of(&p["path"])).collect();
        assert!(paths.iter().all(|p| p.starts_with("/metadata/annotations")), "{paths:?}");
    }
}

#[test]
fn without_cluster_state_only_cluster_free_checks_run() {
    let (code, report) = json_report(&["-f", MANIFESTS]);
    assert_eq!(report["totals"]["nodePoolsEvaluated"], false);
    assert_eq!(report["totals"]["clusterState"], "none");
    let by_name = |name: &str| {
        report["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))
            .clone()
    };
    // Node-pool findings need a cluster: the strict-pool StatefulSet is no longer denied...
    let sts = by_name("buildkitd");
    assert_eq!(sts["verdict"], "allow");
    assert_eq!(sts["findings"][0]["rule"], "pools-not-evaluated");
    assert_eq!(sts["findings"][0]["level"], "note");
    // ...while the hygiene rules still are.
    assert_eq!(by_name("sysbox-node-agent")["verdict"], "deny");
    assert_eq!(by_name("dind-bad-env")["verdict"], "deny");
    assert_eq!(code, 1);
    let o = run(&["check", "-f", "tests/data/manifests/statefulset-buildkit.yaml"]);
    assert_eq!(status(&o), 0);
    assert!(stdout(&o).contains("node-pool verdict not evaluated"), "{}", stdout(&o));
}

#[test]
fn runtime_class_scheduling_is_merged_into_raw_pods() {
    let raw = "tests/data/manifests/pod-dind.yaml";
    // The raw pod has no toleration for the tainted Sysbox pool and no
    // sysbox-runtime selector: only the RuntimeClass's scheduling gets it there.
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "raw"},
        "spec": {"runtimeClassName": "CLASS", "hostUsers": false,
                 "containers": [{"name": "dind", "image": "docker:27-dind", "securityContext": {"readOnlyRootFilesystem": true}}]}}"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("raw.json");
    for class in ["sysbox-runc", "ci-sandbox"] {
        std::fs::write(&file, pod.replace("CLASS", class)).unwrap();
        let (code, report) = json_report(&["-f", file.to_str().unwrap(), "--cluster-state", TAINTED]);
        let o = &report["objects"][0];
        assert_eq!((o["verdict"].as_str(), code), (Some("allow"), 0), "{class}: {o}");
        assert_eq!(o["findings"], serde_json::json!([]), "{class}");
    }
    // Control: the same cluster without the RuntimeClass scheduling leaves
    // only the untainted general pool, which lacks the flag.
    let text = std::fs::read_to_string(TAINTED).unwrap();
    let stripped: String = text
        .split("\n---\n")
        .map(|doc| match doc.find("scheduling:") {
            Some(i) if doc.contains("kind: RuntimeClass") => &doc[..i],
            _ => doc,
        })
        .collect::<Vec<_>>()
        .join("\n---\n");
    let no_scheduling = dir.path().join("no-scheduling.yaml");
    std::fs::write(&no_scheduling, stripped).unwrap();
    std::fs::write(&file, pod.replace("CLASS", "sysbox-runc")).unwrap();
    let (code, report) =
        json_report(&["-f", file.to_str().unwrap(), "--cluster-state", no_scheduling.to_str().unwrap()]);
    assert_eq!((report["objects"][0]["verdict"].as_str(), code), (Some("deny"), 1), "{report}");
    // And the named-class fallback without a cluster view: only sysbox-runc counts.
    let (_, report) = json_report(&["-f", raw]);
    assert_eq!(report["objects"][0]["verdict"], "allow");
    std::fs::write(&file, pod.replace("CLASS", "ci-sandbox")).unwrap();
    let (_, report) = json_report(&["-f", file.to_str().unwrap()]);
    assert_eq!(report["objects"][0]["verdict"], "skip");
}

#[test]
fn namespace_comes_from_the_manifest_else_the_flag() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  runtimeClassName: sysbox-runc\n  hostUsers: false\n  nodeSelector: {pool-role: strict}\n  containers: [{name: c, image: x, securityContext: {readOnlyRootFilesystem: true}}]\n";
    let check = |extra: &[&str], text: &str| {
        let mut args = vec!["check", "-o", "json", "-f", "-", "--cluster-state", CLUSTER];
        args.extend_from_slice(extra);
        let o = run_with(&args, Some(text.as_bytes()));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        (
            v["objects"][0]["namespace"].as_str().unwrap().to_owned(),
            v["objects"][0]["verdict"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(check(&[], pod), ("default".into(), "deny".into()));
    // sandbox is labelled mode=warn in the cluster state.
    assert_eq!(check(&["--namespace", "sandbox"], pod), ("sandbox".into(), "warn".into()));
    let with_ns = pod.replace("metadata: {name: p}", "metadata: {name: p, namespace: sandbox}");
    assert_eq!(check(&["-n", "other"], &with_ns), ("sandbox".into(), "warn".into()));
}

#[test]
fn stdin_is_read_like_a_file() {
    let text = std::fs::read("tests/data/manifests/helm-ci-stack.yaml").unwrap();
    let o = run_with(&["check", "-o", "json", "-f", "-", "--cluster-state", CLUSTER], Some(&text));
    let from_stdin: Value = serde_json::from_slice(&o.stdout).unwrap();
    let (_, from_file) = json_report(&["-f", "tests/data/manifests/helm-ci-stack.yaml", "--cluster-state", CLUSTER]);
    let strip = |v: &Value| {
        let mut v = v["objects"].clone();
        for o in v.as_array_mut().unwrap() {
            o.as_object_mut().unwrap().remove("file");
        }
        v
    };
    assert_eq!(strip(&from_stdin), strip(&from_file));
    assert_eq!(from_stdin["objects"][0]["file"], "<stdin>");
}

// ---------------------------------------------------------------- exit status

#[test]
fn exit_statuses() {
    let m = |f: &str| format!("{MANIFESTS}/{f}");
    let cases: Vec<(Vec<String>, i32)> = vec![
        (vec![m("pod-dind.yaml")], 0),
        (vec![m("statefulset-buildkit.yaml")], 1),
        (vec![m("cronjob-nightly.yaml")], 0),
        (vec![m("cronjob-nightly.yaml"), "--fail-on".into(), "warn".into()], 1),
        (vec![m("pod-dind.yaml"), "--fail-on".into(), "warn".into()], 0),
        // A broken document among good ones: reported, the rest checked, exit 1.
        (vec![m("broken.yaml"), "--disable-rule".into(), "sysbox-env".into()], 1),
        // Parses, but the engine cannot read it: an error, exit 1.
        (vec![m("engine-error.yaml")], 1),
        (vec![m("job-migrate.yaml")], 0),
    ];
    for (files, want) in cases {
        let mut args = vec!["check", "--cluster-state", CLUSTER, "-f"];
        args.extend(files.iter().map(String::as_str));
        let o = run(&args);
        assert_eq!(status(&o), want, "{args:?}\n{}{}", stdout(&o), stderr(&o));
    }
}

#[test]
fn unusable_input_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let only_broken = dir.path().join("only-broken.yaml");
    std::fs::write(&only_broken, "a: [1\n---\nb: {\n").unwrap();
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "# nothing here\n").unwrap();
    let missing = dir.path().join("no-such-file.yaml");
    let p = |p: &Path| p.to_str().unwrap().to_owned();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["-f".into(), p(&missing)], "no-such-file.yaml"),
        (vec!["-f".into(), p(&only_broken)], "none of the 2 documents"),
        (vec!["-f".into(), p(&empty)], "no Kubernetes manifests"),
        (vec!["-f".into(), "-".into(), "-f".into(), "-".into()], "more than once"),
        (vec!["-f".into(), p(&empty), "--cluster-state".into(), p(&missing)], "no-such-file.yaml"),
        (vec!["-f".into(), p(&empty), "--output".into(), "xml".into()], "xml"),
        (vec![], "--filename"),
        (
            vec!["-f".into(), p(&empty), "--live".into(), "--cluster-state".into(), CLUSTER.into()],
            "cannot be used with",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["check".to_owned()];
        args.extend(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(&args);
        assert_eq!(status(&o), 2, "{args:?}\n{}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {needle:?} not in {}", stderr(&o));
    }
    // Bytes that are not UTF-8 end the stream: what came before is judged.
    let latin1 = dir.path().join("latin1.yaml");
    std::fs::write(
        &latin1,
        b"apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\nkind: Pod\nmetadata: {name: caf\xe9}\n",
    )
    .unwrap();
    let o = run(&["check", "-f", &p(&latin1)]);
    assert_eq!(status(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("latin1.yaml:6 doc 1: error: cannot read the rest of the input"), "{}", stdout(&o));
    // The broken-only input is still reported, document by document.
    let o = run(&["check", "-f", &p(&only_broken)]);
    let out = stdout(&o);
    assert!(
        out.contains("only-broken.yaml:1 doc 0: error") && out.contains("only-broken.yaml:3 doc 1: error"),
        "{out}"
    );
}

#[test]
fn live_without_a_reachable_cluster_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // Port 1 on the loopback address: nothing listens there.
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
         users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
         current-context: x\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let o = run(&[
        "check",
        "-f",
        "tests/data/manifests/pod-dind.yaml",
        "--live",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--live-timeout",
        "5",
    ]);
    assert_eq!(status(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("live cluster"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "no report before the cluster is known");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let o = run(&[
        "check",
        "-f",
        "tests/data/manifests/pod-dind.yaml",
        "--live",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ]);
    assert_eq!(status(&o), 2);
    assert!(stderr(&o).contains("/nonexistent/kubeconfig"), "{}", stderr(&o));
}

// ---------------------------------------------------------------- --mutated-out

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn docs(text: &str) -> Vec<Value> {
    sysbox_ro_webhook::manifest::Documents::new(text.as_bytes())
        .map(|d| d.unwrap().parse().unwrap_or(Value::Null))
        .collect()
}

#[test]
fn mutated_out_applies_the_patches_and_copies_the_rest() {
    let out = tempfile::tempdir().unwrap();
    // --steer: pod-mixed-pools.yaml also gets a node-affinity requirement.
    let (_, report) = json_report(&[
        "-f",
        MANIFESTS,
        "--cluster-state",
        CLUSTER,
        "--steer",
        "--mutated-out",
        out.path().to_str().unwrap(),
    ]);
    let steered = report["objects"].as_array().unwrap().iter().find(|o| o["name"] == "dind-anywhere").unwrap();
    assert_eq!(steered["patch"].as_array().unwrap().len(), 2, "{steered}");
    let written: Vec<PathBuf> =
        files_under(out.path()).iter().map(|p| p.strip_prefix(out.path()).unwrap().to_path_buf()).collect();
    let inputs: Vec<PathBuf> = files_under(Path::new(MANIFESTS))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e != "md"))
        .map(|p| p.strip_prefix(MANIFESTS).unwrap().to_path_buf())
        .collect();
    assert_eq!(written, inputs, "the folder is mirrored");

    let objects = report["objects"].as_array().unwrap();
    for rel in &inputs {
        let original = std::fs::read_to_string(Path::new(MANIFESTS).join(rel)).unwrap();
        let mutated = std::fs::read_to_string(out.path().join(rel)).unwrap();
        let file = format!("{MANIFESTS}/{}", rel.display());
        let mine: Vec<&Value> = objects.iter().filter(|o| o["file"] == file.as_str()).collect();
        if mine.iter().all(|o| o["patch"].as_array().unwrap().is_empty()) {
            // Unpatched documents are copied verbatim (the reader drops only
            // separators and comment-only documents).
            let kept: Vec<String> =
                sysbox_ro_webhook::manifest::Documents::new(original.as_bytes()).map(|d| d.unwrap().text).collect();
            assert_eq!(mutated, kept.join("---\n"), "{file}");
            continue;
        }
        // Patched documents: the original with check's own patch applied, and nothing else.
        let mut want = docs(&original);
        for o in &mine {
            let ops: json_patch::Patch = serde_json::from_value(o["patch"].clone()).unwrap();
            let doc = &mut want[o["document"].as_u64().unwrap() as usize];
            let target = match o["item"].as_u64() {
                Some(i) => &mut doc["items"][i as usize],
                None => doc,
            };
            json_patch::patch(target, &ops).unwrap();
        }
        assert_eq!(docs(&mutated), want, "{file}");
        if rel.extension().is_some_and(|e| e == "json") {
            serde_json::from_str::<Value>(&mutated).expect("JSON stays JSON");
        }
    }

    // The mutated manifests need no further patch and keep their verdicts,
    // but for the steered pod, which now lands only on nodes with the flag.
    let (_, again) = json_report(&["-f", out.path().to_str().unwrap(), "--cluster-state", CLUSTER, "--steer"]);
    let verdicts = |r: &Value| -> Vec<(String, String)> {
        r["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (str_of(&o["name"]).to_owned(), str_of(&o["verdict"]).to_owned()))
            .collect()
    };
    let mut want = verdicts(&report);
    for (name, verdict) in want.iter_mut() {
        if name == "dind-anywhere" {
            assert_eq!(verdict, "warn");
            *verdict = "allow".into();
        }
    }
    assert_eq!(verdicts(&again), want);
    assert!(again["objects"].as_array().unwrap().iter().all(|o| o["patch"].as_array().unwrap().is_empty()));
}

#[test]
fn mutated_out_to_stdout_and_stdin_mirror_name() {
    let pod = std::fs::read("tests/data/manifests/pod-dind.yaml").unwrap();
    let o = run_with(&["check", "-f", "-", "--mutated-out", "-", "--cluster-state", CLUSTER], Some(&pod));
    assert_eq!(status(&o), 0);
    let mutated = docs(&stdout(&o));
    assert_eq!(mutated[0]["metadata"]["annotations"]["sysbox-ro.dev/relaxed-read-only"], "true");
    assert!(stderr(&o).contains("<stdin>:1 doc 0 Pod default/dind: allow"), "report on stderr: {}", stderr(&o));

    let out = tempfile::tempdir().unwrap();
    let o = run_with(&["check", "-f", "-", "--mutated-out", out.path().to_str().unwrap()], Some(&pod));
    assert_eq!(status(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(out.path().join("stdin.yaml")).unwrap();
    assert_eq!(docs(&text)[0]["metadata"]["annotations"]["sysbox-ro.dev/relaxed-read-only"], "true");
}

#[test]
fn mutated_out_refuses_to_overwrite_or_merge_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::copy("tests/data/manifests/pod-dind.yaml", a.join("pod.yaml")).unwrap();
    std::fs::copy("tests/data/manifests/pod-dind.yaml", b.join("pod.yaml")).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let o = run(&[
        "check",
        "-f",
        &s(&a.join("pod.yaml")),
        "-f",
        &s(&b.join("pod.yaml")),
        "--mutated-out",
        &s(&dir.path().join("out")),
    ]);
    assert_eq!(status(&o), 2);
    assert!(stderr(&o).contains("would both be written"), "{}", stderr(&o));
    let before = std::fs::read(a.join("pod.yaml")).unwrap();
    let o = run(&["check", "-f", &s(&a), "--mutated-out", &s(&a)]);
    assert_eq!(status(&o), 2);
    assert!(stderr(&o).contains("overwrite the input"), "{}", stderr(&o));
    assert_eq!(std::fs::read(a.join("pod.yaml")).unwrap(), before);
}

// ---------------------------------------------------------------- output formats

fn report(format: &str, extra: &[&str]) -> String {
    let mut args = vec!["check", "-o", format, "-f", MANIFESTS];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(status(&o), 1, "{}", stderr(&o));
    stdout(&o)
}

#[test]
fn text_report() {
    insta::assert_snapshot!("text", report("text", &["--cluster-state", CLUSTER]));
    insta::assert_snapshot!("text_no_cluster", report("text", &[]));
}

#[test]
fn text_colour_only_when_asked_or_on_a_terminal() {
    let plain = report("text", &["--cluster-state", CLUSTER]);
    assert!(!plain.contains('\x1b'), "stdout is a pipe: no colour by default");
    let coloured = report("text", &["--cluster-state", CLUSTER, "--color", "always"]);
    assert!(coloured.contains("\x1b[1;31mdeny\x1b[0m"), "{coloured}");
    let strip = |s: &str| {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    assert_eq!(strip(&coloured), plain);
    assert!(!report("text", &["--cluster-state", CLUSTER, "--color", "never"]).contains('\x1b'));
}

#[test]
fn json_report_snapshot() {
    let text = report("json", &["--cluster-state", CLUSTER]);
    serde_json::from_str::<Value>(&text).expect("valid JSON");
    insta::assert_snapshot!("json", text);
}

#[test]
fn junit_report_snapshot() {
    let text = report("junit", &["--cluster-state", CLUSTER]);
    // Every entry is a test case; denials (4) are failures, errors (2) errors.
    assert_eq!(text.matches("<testcase ").count(), 23);
    assert_eq!(text.matches("<failure ").count(), 4);
    assert_eq!(text.matches("<error ").count(), 2);
    assert!(
        text.contains(
            "<testsuites name=\"sysbox-ro-webhook check\" tests=\"23\" failures=\"4\" errors=\"2\" skipped=\"8\">"
        ),
        "{text}"
    );
    insta::assert_snapshot!("junit", text);
    let warn = report("junit", &["--cluster-state", CLUSTER, "--fail-on", "warn"]);
    assert_eq!(warn.matches("<failure ").count(), 9, "warnings count as failures with --fail-on warn");
}

#[test]
fn sarif_report_snapshot() {
    let text = report("sarif", &["--cluster-state", CLUSTER]);
    let log: Value = serde_json::from_str(&text).unwrap();
    let run = &log["runs"][0];
    let rules: Vec<&str> =
        run["tool"]["driver"]["rules"].as_array().unwrap().iter().map(|r| str_of(&r["id"])).collect();
    let mut want: Vec<&str> = sysbox_ro_webhook::engine::Rule::ALL.iter().map(|r| r.id()).collect();
    want.push("manifest-error");
    assert_eq!(rules, want);
    for r in run["results"].as_array().unwrap() {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(r["ruleId"], rules[i]);
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(str_of(&loc["artifactLocation"]["uri"]).starts_with("tests/data/manifests/"));
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
    }
    // The broken document of broken.yaml starts on line 28.
    assert!(run["results"].as_array().unwrap().iter().any(|r| r["ruleId"] == "manifest-error"
        && r["locations"][0]["physicalLocation"]["region"]["startLine"] == 28
        && r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "tests/data/manifests/broken.yaml"));
    insta::assert_snapshot!("sarif", text);
}

#[test]
fn a_cluster_state_without_nodes_is_refused_unless_allowed() {
    const EMPTY: &str = "tests/data/cluster/no-nodes.yaml";
    let pod = "tests/data/manifests/pod-dind.yaml";
    let o = run(&["check", "-f", pod, "--cluster-state", EMPTY]);
    assert_eq!(status(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("no Node found") && stderr(&o).contains(EMPTY), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));

    // Allowed: every judged object says the pools were not evaluated, and no
    // report claims they were.
    let (code, report) = json_report(&["-f", pod, "--cluster-state", EMPTY, "--allow-empty-cluster"]);
    assert_eq!(report["totals"]["nodePoolsEvaluated"], Value::Bool(false), "{report}");
    let rows = report["objects"].as_array().unwrap();
    let judged: Vec<&Value> = rows.iter().filter(|r| r["verdict"] != "skip").collect();
    assert!(!judged.is_empty(), "{report}");
    for r in judged {
        let rules: Vec<&str> = r["findings"].as_array().unwrap().iter().map(|f| str_of(&f["rule"])).collect();
        assert!(rules.contains(&"cluster-view-empty"), "{r}");
        assert!(!rules.contains(&"no-candidate-nodes"), "{r}");
    }
    assert_eq!(code, 0);
    let text = run(&["check", "-f", pod, "--cluster-state", EMPTY, "--allow-empty-cluster"]);
    assert!(!stdout(&text).contains("node pools evaluated"), "{}", stdout(&text));
    assert!(stdout(&text).contains("holds no Node"), "{}", stdout(&text));
}

#[test]
fn wrongly_typed_manifests_are_errors_naming_the_field() {
    let (code, report) = json_report(&["-f", "tests/data/invalid/wrong-types.yaml", "--cluster-state", CLUSTER]);
    let messages: Vec<(&str, &str)> =
        report["objects"].as_array().unwrap().iter().map(|o| (str_of(&o["verdict"]), str_of(&o["message"]))).collect();
    let expect = [
        "/spec/runtimeClassName",
        "is a string",
        "apiVersion is missing",
        "/metadata: must be a mapping",
        "/spec/template",
    ];
    assert_eq!(messages.len(), expect.len(), "{messages:?}");
    for ((verdict, message), want) in messages.iter().zip(expect) {
        assert_eq!(*verdict, "error", "{message}");
        assert!(message.contains(want), "{message} lacks {want}");
    }
    assert_eq!(code, 1);
}

#[test]
fn unreadable_paths_are_reported_in_every_format_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let missing = missing.to_str().unwrap();
    let pod = "tests/data/manifests/pod-dind.yaml";
    for format in ["json", "sarif"] {
        let o = run(&["check", "-o", format, "-f", missing, "-f", pod]);
        assert_eq!(status(&o), 2, "{format}: {}", stderr(&o));
        let report: Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{format}: {e}: {}", stdout(&o)));
        assert!(report.to_string().contains("missing.yaml") && report.to_string().contains("dind"), "{report}");
        assert!(stderr(&o).contains("missing.yaml"), "{}", stderr(&o));
    }
    let o = run(&["check", "-o", "junit", "-f", missing, "-f", pod]);
    assert_eq!(status(&o), 2);
    let xml = stdout(&o);
    assert!(
        xml.starts_with("<?xml") && xml.trim_end().ends_with("</testsuites>") && xml.contains("missing.yaml"),
        "{xml}"
    );

    // Inside a folder: a link loop and a dangling manifest link are reported
    // per path, and the other files are judged.
    #[cfg(unix)]
    {
        let tree = tempfile::tempdir().unwrap();
        std::fs::copy(pod, tree.path().join("pod.yaml")).unwrap();
        std::os::unix::fs::symlink("l2", tree.path().join("l1")).unwrap();
        std::os::unix::fs::symlink("l1", tree.path().join("l2")).unwrap();
        std::os::unix::fs::symlink("gone.yaml", tree.path().join("x.yaml")).unwrap();
        let (code, report) = json_report(&["-f", tree.path().to_str().unwrap()]);
        let rows: Vec<(String, &str)> = report["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (str_of(&o["file"]).rsplit('/').next().unwrap().to_owned(), str_of(&o["verdict"])))
            .collect();
        let rows: Vec<(&str, &str)> = rows.iter().map(|(f, v)| (f.as_str(), *v)).collect();
        assert_eq!(rows, [("l1", "error"), ("l2", "error"), ("pod.yaml", "allow"), ("x.yaml", "error")], "{report}");
        assert_eq!(code, 1);
    }
}

#[cfg(unix)]
#[test]
fn dev_stdin_is_read_like_dash() {
    let pod = std::fs::read("tests/data/manifests/pod-dind.yaml").unwrap();
    let o = run_with(&["check", "-f", "/dev/stdin", "--cluster-state", CLUSTER], Some(&pod));
    assert_eq!(status(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("/dev/stdin:1 doc 0 Pod default/dind: allow"), "{}", stdout(&o));
}

// ---------------------------------------------------------------- node labels

/// A read-only Sysbox pod that can land only on `pool`.
fn pool_pod(name: &str, pool: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  runtimeClassName: sysbox-runc\n  \
         hostUsers: false\n  nodeSelector: {{cloud.google.com/gke-nodepool: {pool}}}\n  containers:\n    - name: dind\n      \
         image: docker:27-dind\n      securityContext: {{readOnlyRootFilesystem: true}}\n"
    )
}

#[test]
fn labels_from_the_node_agent_and_by_hand_are_told_apart() {
    const AGENT: &str = "tests/data/cluster/agent-evidence.yaml";
    let input = [pool_pod("on-agent", "agent-off"), pool_pod("on-hand", "hand")].join("---\n");
    let o = run_with(&["check", "-f", "-", "--cluster-state", AGENT], Some(input.as_bytes()));
    let text = stdout(&o);
    assert_eq!(status(&o), 1, "{text}{}", stderr(&o));
    assert!(
        text.contains(
            "Pools lacking the flag: agent-off (1 node labelled sysbox-ro.dev/relaxed-read-only=false reported by the \
             node agent (observed 2026-03-01T11:30:00Z))"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "Pools lacking the flag: hand (1 node labelled sysbox-ro.dev/relaxed-read-only=false set by hand)"
        ),
        "{text}"
    );
    assert!(text.contains("nodes: 2 node labels sysbox-ro.dev/relaxed-read-only reported by the node agent, observed "));
    assert!(text.contains("nodes: 1 node label sysbox-ro.dev/relaxed-read-only set by hand: hand-1\n"), "{text}");
    assert!(text.contains("nodes: warning: sysbox-mgr restart pending on 1 node: agent-off-1 ("), "{text}");
    assert!(
        text.contains(
            "nodes: warning: 2 node labels disagree with SYSBOX_MGR_CONFIG in ConfigMap \
             kube-system/sysbox-operational-attributes: agent-off-1 (sysbox-ro.dev/relaxed-read-only=false, ConfigMap \
             intends on), hand-1 ("
        ),
        "{text}"
    );

    let (_, report) = json_report(&["-f", "tests/data/manifests/pod-dind.yaml", "--cluster-state", AGENT]);
    let labels = &report["totals"]["nodeLabels"];
    assert_eq!((labels["byAgent"].as_u64(), labels["byHand"].as_u64()), (Some(2), Some(1)), "{labels}");
    assert_eq!(labels["warnings"].as_array().map(Vec::len), Some(2), "{labels}");
    assert!(labels["agentNewestSeconds"].as_u64() < labels["agentOldestSeconds"].as_u64(), "{labels}");
}

#[test]
fn text_output_escapes_control_characters_from_the_input() {
    // A name holding ESC and a newline must neither drive the terminal nor
    // forge a report line of its own.
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: \"evil\\e[31m\\nsummary: forged\"\n  namespace: default\n\
spec:\n  runtimeClassName: sysbox-runc\n  containers:\n    - name: c\n      image: x\n      securityContext:\n        readOnlyRootFilesystem: true\n";
    let o = run_with(&["check", "-f", "-", "--cluster-state", CLUSTER, "--color", "never"], Some(manifest.as_bytes()));
    let out = stdout(&o);
    assert!(!out.contains('\u{1b}'), "raw ESC in the report: {out:?}");
    assert!(out.contains("evil\\u{1b}[31m\\nsummary: forged"), "escaped name missing: {out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("summary:")).count(), 1, "{out}");
}
