//! Compares YAML libraries on this project's inputs, each case in a child
//! process of its own (so peak RSS is the case's), with a time limit:
//!
//!     cargo run --release --manifest-path benches/yaml-libs/Cargo.toml
//!
//! Cases: a 100,000-item `List` of Pods read whole into a JSON value and
//! item by item; 10,000 and 100,000 nested flow mappings; 1,000,000 `[`; a
//! multi-document stream; a broken document (the error and its position).
//! "saphyr-parser" is this project's reader (`manifest::yaml`) on it.
//! Figures: wall time, peak RSS growth over the process's own (VmHWM), and
//! the result or error.

use std::fmt;
use std::time::{Duration, Instant};

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use sysbox_ro_webhook::manifest::yaml;

fn pod(i: usize) -> String {
    format!("  - apiVersion: v1\n    kind: Pod\n    metadata:\n      name: runner-{i}\n      namespace: ci\n      labels: {{app: runner, shard: \"{s}\"}}\n    spec:\n      runtimeClassName: sysbox-runc\n      containers:\n      - name: dind\n        image: docker:27-dind\n        securityContext:\n          readOnlyRootFilesystem: true\n        env:\n        - {{name: MODE, value: \"ci\"}}\n", s = i % 16)
}

fn list(n: usize) -> String {
    let mut s = String::from("apiVersion: v1\nitems:\n");
    for i in 0..n {
        s.push_str(&pod(i));
    }
    s.push_str("kind: List\nmetadata:\n  resourceVersion: \"\"\n");
    s
}

fn nested_flow_maps(n: usize) -> String {
    format!("{}1{}", "{a: ".repeat(n), "}".repeat(n))
}
fn brackets(n: usize) -> String {
    "[".repeat(n)
}
fn multi() -> String {
    "a: 1\n---\nb: [2, 3]\n---\n# only comment\n---\nc: {d: e}\n".into()
}
fn broken() -> String {
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels: [unclosed\nspec: {}\n".into()
}

/// Visits a top-level mapping, handing each element of `items` to a counter.
struct Items<'a>(&'a mut usize);
impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}
impl<'de> Visitor<'de> for Items<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a List")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(k) = m.next_key::<String>()? {
            if k == "items" {
                m.next_value_seed(Seq(&mut *self.0))?;
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}
struct Seq<'a>(&'a mut usize);
impl<'de> DeserializeSeed<'de> for Seq<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}
impl<'de> Visitor<'de> for Seq<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("items")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        while let Some(v) = s.next_element::<Value>()? {
            if v.get("kind").is_some() {
                *self.0 += 1;
            }
        }
        Ok(())
    }
}

fn run(lib: &str, mode: &str, text: &str) -> Result<String, String> {
    let e = |x: &dyn fmt::Display| x.to_string();
    match (lib, mode) {
        ("serde_yaml", "value") => {
            serde_yaml::from_str::<Value>(text).map(|v| v.to_string().len().to_string()).map_err(|x| e(&x))
        }
        ("serde_yaml_ng", "value") => {
            serde_yaml_ng::from_str::<Value>(text).map(|v| v.to_string().len().to_string()).map_err(|x| e(&x))
        }
        ("serde_norway", "value") => {
            serde_norway::from_str::<Value>(text).map(|v| v.to_string().len().to_string()).map_err(|x| e(&x))
        }
        ("serde-saphyr", "value") => {
            let opts = serde_saphyr::options! { budget: serde_saphyr::budget! { max_nodes: usize::MAX, max_events: usize::MAX, max_total_scalar_bytes: usize::MAX, max_depth: 128, flow_nesting_limit: 128 } };
            serde_saphyr::from_str_with_options::<Value>(text, opts)
                .map(|v| v.to_string().len().to_string())
                .map_err(|x| e(&x))
        }
        ("saphyr-parser", "value") => yaml::from_str(text).map(|v| v.to_string().len().to_string()).map_err(|x| e(&x)),
        ("saphyr-parser", "stream") => {
            let mut n = 0;
            let mut each = |v: Value, _: usize, _: usize| {
                if v.get("kind").is_some() {
                    n += 1;
                }
                Ok(())
            };
            let mut loader = yaml::Loader::from_text(text);
            loader.next_document(&mut yaml::Items::Stream { assume_list: true, each: &mut each }).map_err(|x| e(&x))?;
            Ok(n.to_string())
        }
        ("serde_yaml", "stream") => {
            let mut n = 0;
            Items(&mut n).deserialize(serde_yaml::Deserializer::from_str(text)).map_err(|x| e(&x))?;
            Ok(n.to_string())
        }
        ("serde_yaml_ng", "stream") => {
            let mut n = 0;
            Items(&mut n).deserialize(serde_yaml_ng::Deserializer::from_str(text)).map_err(|x| e(&x))?;
            Ok(n.to_string())
        }
        ("serde_norway", "stream") => {
            let mut n = 0;
            Items(&mut n).deserialize(serde_norway::Deserializer::from_str(text)).map_err(|x| e(&x))?;
            Ok(n.to_string())
        }
        ("serde-saphyr", "stream") => {
            let opts = serde_saphyr::options! { budget: serde_saphyr::budget! { max_nodes: usize::MAX, max_events: usize::MAX, max_total_scalar_bytes: usize::MAX, max_depth: 128, flow_nesting_limit: 128 } };
            let mut n = 0;
            serde_saphyr::with_deserializer_from_str_with_options(text, opts, |d| Items(&mut n).deserialize(d))
                .map_err(|x| e(&x))?;
            Ok(n.to_string())
        }
        ("serde_yaml", "multi") => serde_yaml::Deserializer::from_str(text)
            .map(|d| <Value as serde::Deserialize>::deserialize(d).map(|v| v.to_string()).map_err(|x| e(&x)))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(" ")),
        ("serde_yaml_ng", "multi") => serde_yaml_ng::Deserializer::from_str(text)
            .map(|d| <Value as serde::Deserialize>::deserialize(d).map(|v| v.to_string()).map_err(|x| e(&x)))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(" ")),
        ("serde_norway", "multi") => serde_norway::Deserializer::from_str(text)
            .map(|d| <Value as serde::Deserialize>::deserialize(d).map(|v| v.to_string()).map_err(|x| e(&x)))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(" ")),
        ("serde-saphyr", "multi") => serde_saphyr::from_multiple::<Value>(text)
            .map(|v| v.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" "))
            .map_err(|x| e(&x)),
        ("saphyr-parser", "multi") => {
            let mut loader = yaml::Loader::from_text(text);
            let mut docs = Vec::new();
            while let Some(d) = loader.next_document(&mut yaml::Items::Keep).map_err(|x| e(&x))? {
                docs.push(d.value.to_string());
            }
            Ok(docs.join(" "))
        }
        _ => Err("n/a".into()),
    }
}

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn input(case: &str) -> String {
    match case {
        "list100k" => list(100_000),
        "flow10k" => nested_flow_maps(10_000),
        "flow100k" => nested_flow_maps(100_000),
        "brackets1m" => brackets(1_000_000),
        "multi" => multi(),
        "broken" => broken(),
        _ => panic!("case"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 5 && args[1] == "child" {
        let text = input(&args[4]);
        let base = vm_hwm_kb();
        let t = Instant::now();
        let r = run(&args[2], &args[3], &text);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let out = match r {
            Ok(s) => format!("ok {}", &s[..s.len().min(60)]),
            Err(e) => format!("err {}", e.lines().next().unwrap_or("").chars().take(110).collect::<String>()),
        };
        println!("{ms:9.1} ms  +{:7} kB  {out}", vm_hwm_kb().saturating_sub(base));
        return;
    }
    let libs = ["serde_yaml", "serde_yaml_ng", "serde_norway", "serde-saphyr", "saphyr-parser"];
    let cases: &[(&str, &str)] = &[
        ("list100k", "value"),
        ("list100k", "stream"),
        ("flow10k", "value"),
        ("flow100k", "value"),
        ("brackets1m", "value"),
        ("multi", "multi"),
        ("broken", "value"),
    ];
    println!(
        "input sizes: list100k {} bytes, flow10k {}, flow100k {}, brackets1m {}",
        list(100_000).len(),
        nested_flow_maps(10_000).len(),
        nested_flow_maps(100_000).len(),
        1_000_000
    );
    let limit = Duration::from_secs(std::env::var("LIMIT_S").ok().and_then(|s| s.parse().ok()).unwrap_or(30));
    for (case, mode) in cases {
        println!("\n{case} ({mode}):");
        for lib in libs {
            let mut child = std::process::Command::new(&args[0])
                .args(["child", lib, mode, case])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let t = Instant::now();
            loop {
                if let Some(_st) = child.try_wait().unwrap() {
                    break;
                }
                if t.elapsed() > limit {
                    child.kill().ok();
                    child.wait().ok();
                    println!("  {lib:14} gave up after {} s", limit.as_secs());
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.elapsed() <= limit {
                let mut s = String::new();
                use std::io::Read;
                child.stdout.take().unwrap().read_to_string(&mut s).ok();
                let s = if s.is_empty() {
                    "crashed (no output: stack overflow or abort)".to_string()
                } else {
                    s.trim_end().to_string()
                };
                println!("  {lib:14} {s}");
            }
        }
    }
}
