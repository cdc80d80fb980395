//! Generated inputs for the benchmarks, shared by `benches/engine.rs` and
//! `examples/gen_cluster.rs`:
//!
//! - cluster states of N nodes in about 50 node pools, labelled and tainted the
//!   way GKE, EKS, AKS and Karpenter label their nodes and sysbox-deploy-k8s
//!   labels the nodes it installs on, written as `kubectl get -o yaml` prints
//!   them (status, images and annotations included), plus the `sysbox-runc`
//!   RuntimeClass, namespaces and the sysbox-mgr ConfigMap;
//! - AdmissionReview bodies: a read-only Sysbox pod of about 6 KB, a
//!   Deployment, and a pod of about 1 MiB (a large environment).
//!
//! Everything is deterministic: the same arguments give the same bytes.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::{json, Map, Value};

/// splitmix64: a small deterministic generator, enough for names and sizes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            let _ = write!(s, "{:016x}", self.next());
        }
        s.truncate(len);
        s
    }
    pub fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Gke,
    Eks,
    Aks,
    Karpenter,
}

/// One node pool of the generated cluster.
#[derive(Debug, Clone)]
pub struct Pool {
    pub provider: Provider,
    pub name: String,
    /// sysbox-deploy-k8s runs on it (`sysbox-install=yes`, `sysbox-runtime=running`).
    pub sysbox: bool,
    /// The flag label: `Some(true)`, `Some(false)` or absent.
    pub flag: Option<bool>,
    /// A taint every node of the pool carries: (key, value, effect).
    pub taint: Option<(&'static str, &'static str, &'static str)>,
    /// Part of the pool is still being installed (label `sysbox-runtime=installing`
    /// and the installer's `sysbox-runtime=not-running:NoSchedule` taint).
    pub installing: bool,
    /// Relative size.
    pub weight: usize,
}

/// The taint the 6 KB pod tolerates: pools dedicated to Sysbox workloads.
pub const DEDICATED_TAINT: (&str, &str, &str) = ("sandbox.example.com/dedicated", "sysbox", "NoSchedule");
const GPU_TAINT: (&str, &str, &str) = ("nvidia.com/gpu", "present", "NoSchedule");

/// How many pools a cluster of `nodes` nodes has: about 50 for large
/// clusters, fewer for small ones (10 nodes: 3 pools).
pub fn pool_count(nodes: usize) -> usize {
    (nodes / 3).clamp(1, 50)
}

/// The pools, always the same for the same count. Most Sysbox pools carry
/// the flag label `true`, some `false`, a few none; some pools run no Sysbox
/// at all; a few are tainted; one is partly still installing.
pub fn pools(count: usize) -> Vec<Pool> {
    const NAMES: [&str; 10] = ["ci", "build", "sandbox", "dev", "runner", "batch", "general", "stage", "infra", "edge"];
    (0..count)
        .map(|p| {
            let provider = match p % 5 {
                0 | 1 => Provider::Gke,
                2 => Provider::Eks,
                3 => Provider::Aks,
                _ => Provider::Karpenter,
            };
            let base = NAMES[p % NAMES.len()];
            let name = match provider {
                // AKS pool names: lowercase alphanumerics, at most 12 characters
                Provider::Aks => format!("{}{}", base.chars().take(6).collect::<String>(), p),
                _ => format!("{base}-{p}"),
            };
            let sysbox = p % 8 != 6;
            let flag = match p % 8 {
                _ if !sysbox => None,
                1 => Some(false),
                5 => None,
                _ => Some(true),
            };
            let taint = match p % 12 {
                4 => Some(DEDICATED_TAINT),
                10 => Some(GPU_TAINT),
                _ => None,
            };
            Pool { provider, name, sysbox, flag, taint, installing: p % 25 == 13, weight: 1 + (p * 7) % 5 }
        })
        .collect()
}

fn zones(provider: Provider) -> [&'static str; 3] {
    match provider {
        Provider::Gke => ["us-central1-a", "us-central1-b", "us-central1-c"],
        Provider::Eks | Provider::Karpenter => ["us-east-1a", "us-east-1b", "us-east-1c"],
        Provider::Aks => ["eastus-1", "eastus-2", "eastus-3"],
    }
}

fn region(provider: Provider) -> &'static str {
    match provider {
        Provider::Gke => "us-central1",
        Provider::Eks | Provider::Karpenter => "us-east-1",
        Provider::Aks => "eastus",
    }
}

fn instance_types(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Gke => &["n2-standard-8"],
        Provider::Eks => &["m6i.2xlarge"],
        Provider::Aks => &["Standard_D8s_v5"],
        Provider::Karpenter => &["m6i.2xlarge", "m6a.2xlarge", "c6i.4xlarge"],
    }
}

const IMAGES: [(&str, u64); 22] = [
    ("registry.nestybox.com/nestybox/sysbox-deploy-k8s:v0.6.7", 214_338_112),
    ("registry.k8s.io/kube-proxy:v1.33.4", 31_204_991),
    ("registry.k8s.io/pause:3.10", 320_368),
    ("registry.k8s.io/coredns/coredns:v1.12.1", 22_381_236),
    ("registry.k8s.io/metrics-server/metrics-server:v0.7.2", 19_494_617),
    ("registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.13.0", 11_232_409),
    ("registry.k8s.io/sig-storage/livenessprobe:v2.15.0", 10_483_113),
    ("quay.io/prometheus/node-exporter:v1.9.1", 11_955_231),
    ("quay.io/cilium/cilium:v1.17.6", 223_194_339),
    ("docker.io/fluent/fluent-bit:4.0.3", 37_418_106),
    ("docker.io/library/docker:27-dind", 135_102_766),
    ("docker.io/nestybox/ubuntu-jammy-systemd-docker:latest", 312_093_218),
    ("ghcr.io/actions/actions-runner:2.327.1", 432_095_116),
    ("docker.io/library/golang:1.24", 309_774_512),
    ("docker.io/library/node:22-bookworm", 399_102_441),
    ("docker.io/library/python:3.13-slim", 45_233_907),
    ("docker.io/grafana/promtail:3.5.1", 82_341_290),
    ("registry.k8s.io/ingress-nginx/controller:v1.13.0", 105_021_445),
    ("docker.io/bitnami/kubectl:1.33", 86_002_340),
    ("quay.io/jetstack/cert-manager-controller:v1.18.2", 22_891_004),
    ("docker.io/library/alpine:3.22", 3_803_211),
    ("docker.io/library/busybox:1.37", 2_156_190),
];

fn ip(n: usize) -> String {
    format!("10.{}.{}.{}", 16 + (n >> 16) % 16, (n >> 8) & 0xff, n & 0xff)
}

/// One Node as the API server returns it.
fn node(pool: &Pool, index_in_pool: usize, global: usize, rng: &mut Rng) -> Value {
    let p = pool.provider;
    let zone = zones(p)[index_in_pool % 3];
    let types = instance_types(p);
    let itype = types[(index_in_pool / 3) % types.len()];
    let suffix = rng.hex(4);
    let name = match p {
        Provider::Gke => format!("gke-prod-{}-{}-{}", pool.name, &rng.hex(8), suffix),
        Provider::Eks | Provider::Karpenter => format!("ip-{}.ec2.internal", ip(global).replace('.', "-")),
        Provider::Aks => format!("aks-{}-{}-vmss{:06x}", pool.name, 30_000_000 + global % 7, global),
    };
    let mut labels = Map::new();
    let mut l = |k: &str, v: &str| {
        labels.insert(k.to_owned(), Value::String(v.to_owned()));
    };
    l("beta.kubernetes.io/arch", "amd64");
    l("beta.kubernetes.io/os", "linux");
    l("beta.kubernetes.io/instance-type", itype);
    l("failure-domain.beta.kubernetes.io/region", region(p));
    l("failure-domain.beta.kubernetes.io/zone", zone);
    l("kubernetes.io/arch", "amd64");
    l("kubernetes.io/os", "linux");
    l("kubernetes.io/hostname", &name);
    l("node.kubernetes.io/instance-type", itype);
    l("topology.kubernetes.io/region", region(p));
    l("topology.kubernetes.io/zone", zone);
    let mut installing = false;
    match p {
        Provider::Gke => {
            l("cloud.google.com/gke-nodepool", &pool.name);
            l("cloud.google.com/gke-boot-disk", "pd-balanced");
            l("cloud.google.com/gke-container-runtime", "containerd");
            l("cloud.google.com/gke-cpu-scaling-level", "8");
            l("cloud.google.com/gke-logging-variant", "DEFAULT");
            l("cloud.google.com/gke-max-pods-per-node", "110");
            l("cloud.google.com/gke-os-distribution", "ubuntu");
            l("cloud.google.com/gke-provisioning", "standard");
            l("cloud.google.com/gke-stack-type", "IPV4");
            l("cloud.google.com/machine-family", "n2");
            l("cloud.google.com/private-node", "false");
            l("iam.gke.io/gke-metadata-server-enabled", "true");
            l("topology.gke.io/zone", zone);
        }
        Provider::Eks => {
            l("eks.amazonaws.com/nodegroup", &pool.name);
            l("eks.amazonaws.com/capacityType", "ON_DEMAND");
            l("eks.amazonaws.com/nodegroup-image", "ami-0c1f7b7d4a3e9f2b1");
            l("eks.amazonaws.com/sourceLaunchTemplateId", "lt-0a7e3c9d1b2f4e5a6");
            l("eks.amazonaws.com/sourceLaunchTemplateVersion", "3");
            l("alpha.eksctl.io/cluster-name", "prod");
            l("alpha.eksctl.io/nodegroup-name", &pool.name);
            l("k8s.io/cloud-provider-aws", "a94967527effcefb5f5829f529c0a1b9");
            l("topology.ebs.csi.aws.com/zone", zone);
            l("topology.k8s.aws/zone-id", &format!("use1-az{}", 1 + index_in_pool % 3));
        }
        Provider::Aks => {
            l("agentpool", &pool.name);
            l("kubernetes.azure.com/agentpool", &pool.name);
            l("kubernetes.azure.com/cluster", "MC_prod-rg_prod_eastus");
            l("kubernetes.azure.com/consolidated-additional-properties", "5b5b2d9e-1c1f-4a3e-9d6b-0e2f3a4b5c6d");
            l("kubernetes.azure.com/kubelet-identity-client-id", "0f6c8a2e-4b7d-4c1a-9e3f-2d5b7a9c1e0f");
            l("kubernetes.azure.com/mode", "user");
            l("kubernetes.azure.com/node-image-version", "AKSUbuntu-2204gen2containerd-202507.21.0");
            l("kubernetes.azure.com/nodepool-type", "VirtualMachineScaleSets");
            l("kubernetes.azure.com/os-sku", "Ubuntu");
            l("kubernetes.azure.com/role", "agent");
            l("kubernetes.azure.com/storageprofile", "managed");
            l("kubernetes.azure.com/storagetier", "Premium_LRS");
            l("storageprofile", "managed");
            l("storagetier", "Premium_LRS");
            l("topology.disk.csi.azure.com/zone", zone);
        }
        Provider::Karpenter => {
            let family = itype.split('.').next().unwrap_or("m6i");
            l("karpenter.sh/nodepool", &pool.name);
            l("karpenter.sh/capacity-type", if index_in_pool % 4 == 0 { "on-demand" } else { "spot" });
            l("karpenter.sh/initialized", "true");
            l("karpenter.sh/registered", "true");
            l("karpenter.k8s.aws/ec2nodeclass", "sysbox");
            l("karpenter.k8s.aws/instance-category", &family[..1]);
            l("karpenter.k8s.aws/instance-family", family);
            l("karpenter.k8s.aws/instance-generation", "6");
            l("karpenter.k8s.aws/instance-size", itype.split('.').nth(1).unwrap_or("2xlarge"));
            l("karpenter.k8s.aws/instance-cpu", if itype.starts_with('c') { "16" } else { "8" });
            l("karpenter.k8s.aws/instance-memory", "32768");
            l("karpenter.k8s.aws/instance-hypervisor", "nitro");
            l("topology.k8s.aws/zone-id", &format!("use1-az{}", 1 + index_in_pool % 3));
        }
    }
    if pool.sysbox {
        installing = pool.installing && index_in_pool % 4 == 1;
        l("sysbox-install", "yes");
        l("sysbox-runtime", if installing { "installing" } else { "running" });
        l("crio-runtime", "running");
        if let Some(flag) = pool.flag {
            l("sysbox-ro.dev/relaxed-read-only", if flag { "true" } else { "false" });
        }
    }

    let mut taints: Vec<Value> = Vec::new();
    if let Some((k, v, e)) = pool.taint {
        taints.push(json!({ "key": k, "value": v, "effect": e }));
    }
    if installing {
        taints.push(json!({ "key": "sysbox-runtime", "value": "not-running", "effect": "NoSchedule" }));
    }
    // a cordoned node now and then (drain in progress)
    let cordoned = global % 97 == 41;
    if cordoned {
        taints.push(json!({
            "key": "node.kubernetes.io/unschedulable",
            "effect": "NoSchedule",
            "timeAdded": "2025-07-30T09:12:44Z"
        }));
    }

    let mut annotations = Map::new();
    let mut a = |k: &str, v: String| {
        annotations.insert(k.to_owned(), Value::String(v));
    };
    a("node.alpha.kubernetes.io/ttl", "0".into());
    a("volumes.kubernetes.io/controller-managed-attach-detach", "true".into());
    match p {
        Provider::Gke => {
            a("container.googleapis.com/instance_id", format!("{}", 1_000_000_000_000_000u64 + rng.below(1 << 48)));
            a(
                "csi.volume.kubernetes.io/nodeid",
                format!(r#"{{"pd.csi.storage.gke.io":"projects/prod-4711/zones/{zone}/instances/{name}"}}"#),
            );
            a("node.gke.io/last-applied-node-labels", "cloud.google.com/gke-boot-disk=pd-balanced,cloud.google.com/gke-container-runtime=containerd,cloud.google.com/gke-cpu-scaling-level=8,cloud.google.com/gke-logging-variant=DEFAULT".into());
            a("node.gke.io/last-applied-node-taints", String::new());
        }
        Provider::Eks | Provider::Karpenter => {
            a("alpha.kubernetes.io/provided-node-ip", ip(global));
            a("csi.volume.kubernetes.io/nodeid", format!(r#"{{"ebs.csi.aws.com":"i-0{}"}}"#, rng.hex(16)));
            if p == Provider::Karpenter {
                a("karpenter.k8s.aws/ec2nodeclass-hash", format!("{}", rng.next() >> 4));
                a("karpenter.k8s.aws/ec2nodeclass-hash-version", "v4".into());
                a("karpenter.sh/nodepool-hash", format!("{}", rng.next() >> 4));
                a("karpenter.sh/nodepool-hash-version", "v3".into());
            }
        }
        Provider::Aks => {
            a(
                "csi.volume.kubernetes.io/nodeid",
                format!(r#"{{"disk.csi.azure.com":"{name}","file.csi.azure.com":"{name}"}}"#),
            );
        }
    }

    let provider_id = match p {
        Provider::Gke => format!("gce://prod-4711/{zone}/{name}"),
        Provider::Eks | Provider::Karpenter => format!("aws:///{zone}/i-0{}", rng.hex(16)),
        Provider::Aks => format!(
            "azure:///subscriptions/3b1e2c4d-5f6a-4b7c-8d9e-0f1a2b3c4d5e/resourceGroups/mc_prod-rg_prod_eastus/providers/Microsoft.Compute/virtualMachineScaleSets/aks-{}-30000000-vmss/virtualMachines/{}",
            pool.name,
            index_in_pool
        ),
    };
    let mut spec = json!({
        "podCIDR": format!("10.{}.{}.0/24", 100 + global / 256 % 100, global % 256),
        "podCIDRs": [format!("10.{}.{}.0/24", 100 + global / 256 % 100, global % 256)],
        "providerID": provider_id,
    });
    if !taints.is_empty() {
        spec["taints"] = Value::Array(taints);
    }
    if cordoned {
        spec["unschedulable"] = json!(true);
    }

    let (cpu, mem) = if itype.starts_with('c') { ("16", "32386328Ki") } else { ("8", "32863120Ki") };
    let condition = |t: &str, status: &str, reason: &str, message: &str| {
        json!({
            "lastHeartbeatTime": "2025-08-01T10:41:07Z",
            "lastTransitionTime": "2025-07-14T06:02:51Z",
            "message": message,
            "reason": reason,
            "status": status,
            "type": t,
        })
    };
    let mut conditions = vec![
        condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ];
    if p == Provider::Gke {
        conditions.insert(0, condition("KernelDeadlock", "False", "KernelHasNoDeadlock", "kernel has no deadlock"));
        conditions.insert(
            1,
            condition("ReadonlyFilesystem", "False", "FilesystemIsNotReadOnly", "Filesystem is not read-only"),
        );
        conditions.insert(
            2,
            condition("FrequentKubeletRestart", "False", "NoFrequentKubeletRestart", "kubelet is functioning properly"),
        );
        conditions.insert(
            3,
            condition(
                "FrequentContainerdRestart",
                "False",
                "NoFrequentContainerdRestart",
                "containerd is functioning properly",
            ),
        );
    }
    let images: Vec<Value> = IMAGES
        .iter()
        .map(|(image, size)| {
            let repo = image.rsplit_once(':').map_or(*image, |(r, _)| r);
            json!({ "names": [format!("{repo}@sha256:{}", rng.hex(64)), image], "sizeBytes": size })
        })
        .collect();
    let machine_id = rng.hex(32);
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "annotations": annotations,
            "creationTimestamp": "2025-07-14T06:01:33Z",
            "labels": labels,
            "name": name,
            "resourceVersion": format!("{}", 48_000_000 + rng.below(1_000_000)),
            "uid": rng.uuid(),
        },
        "spec": spec,
        "status": {
            "addresses": [
                { "address": ip(global), "type": "InternalIP" },
                { "address": name, "type": "Hostname" },
            ],
            "allocatable": {
                "cpu": if cpu == "16" { "15890m" } else { "7910m" },
                "ephemeral-storage": "47060071478",
                "hugepages-1Gi": "0",
                "hugepages-2Mi": "0",
                "memory": "29094720Ki",
                "pods": "110",
            },
            "capacity": {
                "cpu": cpu,
                "ephemeral-storage": "98831908Ki",
                "hugepages-1Gi": "0",
                "hugepages-2Mi": "0",
                "memory": mem,
                "pods": "110",
            },
            "conditions": conditions,
            "daemonEndpoints": { "kubeletEndpoint": { "Port": 10250 } },
            "images": images,
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": rng.uuid(),
                "containerRuntimeVersion": "cri-o://1.31.6",
                "kernelVersion": "6.8.0-1027-gcp",
                "kubeProxyVersion": "",
                "kubeletVersion": "v1.33.4",
                "machineID": machine_id,
                "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.5 LTS",
                "systemUUID": rng.uuid(),
            },
        },
    })
}

fn runtime_class() -> Value {
    json!({
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": { "name": "sysbox-runc", "creationTimestamp": "2025-07-14T06:20:02Z", "uid": "6c3e1f0a-8d2b-4e5f-9a7c-1b3d5f7e9a0c" },
        "handler": "sysbox-runc",
        "scheduling": { "nodeSelector": { "sysbox-runtime": "running" } },
    })
}

fn others() -> Vec<Value> {
    let ns = |name: &str, labels: Value| {
        let mut l = json!({ "kubernetes.io/metadata.name": name });
        if let Value::Object(extra) = labels {
            l.as_object_mut().unwrap().extend(extra);
        }
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name, "labels": l }, "spec": { "finalizers": ["kubernetes"] }, "status": { "phase": "Active" } })
    };
    vec![
        ns("default", json!({})),
        ns("kube-system", json!({})),
        ns("ci", json!({ "team": "platform" })),
        ns("sandbox", json!({ "sysbox-ro.dev/mode": "warn" })),
        ns("prod", json!({ "sysbox-ro.dev/mode": "enforce" })),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": "sysbox-operational-attributes", "namespace": "kube-system" },
            "data": {
                "SYSBOX_MGR_CONFIG": "--disable-inner-image-preload",
                "SYSBOX_FS_CONFIG": "",
                "SYSBOX_RUNC_CONFIG": "",
            },
        }),
    ]
}

/// How the cluster state is laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One YAML document per object (`---` separated).
    Stream,
    /// The nodes in one `List`, as `kubectl get nodes -o yaml` prints them.
    List,
    /// Every object in one JSON `List`, as `kubectl get ... -o json` prints it.
    JsonList,
}

/// The objects other than nodes: the RuntimeClass, namespaces and the
/// sysbox-mgr ConfigMap.
pub fn head_objects() -> Vec<Value> {
    let mut objects = vec![runtime_class()];
    objects.extend(others());
    objects
}

/// Calls `f` with each of the `nodes` nodes, pool by pool.
pub fn for_each_node(nodes: usize, mut f: impl FnMut(Value) -> io::Result<()>) -> io::Result<()> {
    let pools = pools(pool_count(nodes));
    let total_weight: usize = pools.iter().map(|p| p.weight).sum();
    // nodes per pool in proportion to weight; the remainder goes round-robin
    let mut sizes: Vec<usize> = pools.iter().map(|p| nodes * p.weight / total_weight).collect();
    let mut i = 0;
    while sizes.iter().sum::<usize>() < nodes {
        sizes[i % pools.len()] += 1;
        i += 1;
    }
    let mut rng = Rng::new(nodes as u64 ^ 0x5eed);
    let mut global = 0;
    for (pool, &size) in pools.iter().zip(&sizes) {
        for k in 0..size {
            f(node(pool, k, global, &mut rng))?;
            global += 1;
        }
    }
    Ok(())
}

/// Writes a cluster state of `nodes` nodes.
pub fn write_cluster(out: &mut impl Write, nodes: usize, layout: Layout) -> io::Result<()> {
    if layout == Layout::JsonList {
        out.write_all(br#"{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":""},"items":["#)?;
        let mut first = true;
        let mut item = |out: &mut dyn Write, o: &Value| -> io::Result<()> {
            if !std::mem::take(&mut first) {
                out.write_all(b",\n")?;
            }
            serde_json::to_writer(&mut *out, o).map_err(io::Error::other)
        };
        for o in head_objects() {
            item(out, &o)?;
        }
        for_each_node(nodes, |n| item(out, &n))?;
        return out.write_all(b"]}\n");
    }
    writeln!(out, "# Generated by examples/gen_cluster.rs: {nodes} nodes in {} pools.", pool_count(nodes))?;
    for o in head_objects() {
        writeln!(out, "---")?;
        out.write_all(serde_norway::to_string(&o).map_err(io::Error::other)?.as_bytes())?;
    }
    if layout == Layout::List {
        writeln!(out, "---\napiVersion: v1\nitems:")?;
    }
    for_each_node(nodes, |n| {
        let text = serde_norway::to_string(&n).map_err(io::Error::other)?;
        match layout {
            Layout::Stream => {
                writeln!(out, "---")?;
                out.write_all(text.as_bytes())
            }
            // (a JSON List was written above)
            Layout::List | Layout::JsonList => {
                for (j, line) in text.lines().enumerate() {
                    writeln!(out, "{}{line}", if j == 0 { "- " } else { "  " })?;
                }
                Ok(())
            }
        }
    })?;
    if layout == Layout::List {
        writeln!(out, "kind: List\nmetadata:\n  resourceVersion: \"\"")?;
    }
    Ok(())
}

pub fn cluster_yaml(nodes: usize, layout: Layout) -> String {
    let mut buf = Vec::new();
    write_cluster(&mut buf, nodes, layout).expect("writing to memory");
    String::from_utf8(buf).expect("YAML is UTF-8")
}

// ---------------------------------------------------------------------------
// Request bodies

fn env(name: &str, value: &str) -> Value {
    json!({ "name": name, "value": value })
}

/// The pod template of a CI runner that runs Docker inside Sysbox with a
/// read-only root filesystem, as the API server has defaulted it.
fn runner_spec(extra_env: Vec<Value>) -> Value {
    let mut runner_env = vec![
        env("RUNNER_SCOPE", "org"),
        env("RUNNER_ORG", "example"),
        env("RUNNER_LABELS", "self-hosted,linux,x64,sysbox,docker"),
        env("RUNNER_GROUP", "default"),
        env("RUNNER_WORKDIR", "/home/runner/_work"),
        env("RUNNER_EPHEMERAL", "true"),
        env("DOCKER_HOST", "unix:///var/run/docker.sock"),
        env("DOCKER_BUILDKIT", "1"),
        env("DOCKER_TLS_CERTDIR", ""),
        env("TZ", "UTC"),
        env("LANG", "C.UTF-8"),
        env("GOMAXPROCS", "4"),
        env("SYSBOX_HONOR_CAPS", "TRUE"),
        json!({ "name": "RUNNER_NAME", "valueFrom": { "fieldRef": { "apiVersion": "v1", "fieldPath": "metadata.name" } } }),
        json!({ "name": "NODE_NAME", "valueFrom": { "fieldRef": { "apiVersion": "v1", "fieldPath": "spec.nodeName" } } }),
        json!({ "name": "RUNNER_TOKEN", "valueFrom": { "secretKeyRef": { "key": "token", "name": "runner-token" } } }),
        json!({ "name": "MEMORY_LIMIT", "valueFrom": { "resourceFieldRef": { "containerName": "runner", "divisor": "1Mi", "resource": "limits.memory" } } }),
    ];
    runner_env.extend(extra_env);
    let probe = |path: &str, delay: u32| {
        json!({
            "failureThreshold": 3,
            "httpGet": { "path": path, "port": 8080, "scheme": "HTTP" },
            "initialDelaySeconds": delay,
            "periodSeconds": 10,
            "successThreshold": 1,
            "timeoutSeconds": 2,
        })
    };
    json!({
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{
                        "matchExpressions": [
                            { "key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"] },
                            { "key": "kubernetes.io/os", "operator": "In", "values": ["linux"] },
                        ],
                    }],
                },
            },
        },
        "containers": [
            {
                "name": "runner",
                "image": "ghcr.io/example/ci-runner-sysbox:2.327.1-jammy",
                "imagePullPolicy": "IfNotPresent",
                "command": ["/usr/bin/tini", "--"],
                "args": ["/usr/local/bin/entrypoint.sh", "--once"],
                "env": runner_env,
                "envFrom": [{ "configMapRef": { "name": "runner-settings" } }],
                "ports": [{ "containerPort": 8080, "name": "health", "protocol": "TCP" }],
                "resources": {
                    "limits": { "cpu": "4", "ephemeral-storage": "20Gi", "memory": "8Gi" },
                    "requests": { "cpu": "2", "ephemeral-storage": "10Gi", "memory": "4Gi" },
                },
                "livenessProbe": probe("/healthz", 30),
                "readinessProbe": probe("/readyz", 5),
                "securityContext": { "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": true },
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "volumeMounts": [
                    { "mountPath": "/home/runner/_work", "name": "work" },
                    { "mountPath": "/tmp", "name": "tmp" },
                    { "mountPath": "/var/lib/docker", "name": "docker" },
                    { "mountPath": "/etc/runner", "name": "settings", "readOnly": true },
                    { "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access-7xq2m", "readOnly": true },
                ],
            },
            {
                "name": "log-shipper",
                "image": "docker.io/fluent/fluent-bit:4.0.3",
                "imagePullPolicy": "IfNotPresent",
                "args": ["-c", "/fluent-bit/etc/fluent-bit.conf"],
                "env": [env("FLB_LOG_LEVEL", "warn"), env("CLUSTER", "prod")],
                "resources": { "limits": { "memory": "128Mi" }, "requests": { "cpu": "50m", "memory": "64Mi" } },
                "securityContext": { "readOnlyRootFilesystem": true },
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "volumeMounts": [
                    { "mountPath": "/home/runner/_work/_diag", "name": "work", "subPath": "_diag", "readOnly": true },
                    { "mountPath": "/fluent-bit/etc", "name": "fluent-bit" },
                    { "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access-7xq2m", "readOnly": true },
                ],
            },
        ],
        "initContainers": [{
            "name": "prepare",
            "image": "docker.io/library/busybox:1.37",
            "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", "mkdir -p /work/_diag /work/_tool && chown -R 1001:1001 /work"],
            "resources": {},
            "securityContext": { "readOnlyRootFilesystem": true },
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "volumeMounts": [{ "mountPath": "/work", "name": "work" }],
        }],
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": true,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "restartPolicy": "Never",
        "runtimeClassName": "sysbox-runc",
        "nodeSelector": { "sysbox-runtime": "running" },
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": "ci-runner",
        "serviceAccountName": "ci-runner",
        "terminationGracePeriodSeconds": 60,
        "tolerations": [
            { "key": DEDICATED_TAINT.0, "operator": "Equal", "value": DEDICATED_TAINT.1, "effect": "NoSchedule" },
            { "effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300 },
            { "effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300 },
        ],
        "volumes": [
            { "name": "work", "emptyDir": { "sizeLimit": "10Gi" } },
            { "name": "tmp", "emptyDir": { "medium": "Memory", "sizeLimit": "512Mi" } },
            { "name": "docker", "emptyDir": {} },
            { "name": "settings", "configMap": { "defaultMode": 420, "name": "runner-settings" } },
            { "name": "fluent-bit", "configMap": { "defaultMode": 420, "name": "fluent-bit-runner" } },
            {
                "name": "kube-api-access-7xq2m",
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        { "serviceAccountToken": { "expirationSeconds": 3607, "path": "token" } },
                        { "configMap": { "items": [{ "key": "ca.crt", "path": "ca.crt" }], "name": "kube-root-ca.crt" } },
                        { "downwardAPI": { "items": [{ "fieldRef": { "apiVersion": "v1", "fieldPath": "metadata.namespace" }, "path": "namespace" }] } },
                    ],
                },
            },
        ],
    })
}

fn runner_labels() -> Value {
    json!({
        "app.kubernetes.io/name": "ci-runner",
        "app.kubernetes.io/component": "runner",
        "app.kubernetes.io/part-of": "ci",
        "team": "platform",
    })
}

fn runner_annotations() -> Value {
    json!({
        "io.kubernetes.cri-o.userns-mode": "auto:size=65536",
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
    })
}

fn pod(extra_env: Vec<Value>) -> Value {
    let mut labels = runner_labels();
    labels["pod-template-hash"] = json!("6d9f8b7c5");
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": runner_annotations(),
            "generateName": "ci-runner-6d9f8b7c5-",
            "labels": labels,
            "name": "ci-runner-6d9f8b7c5-x2x4k",
            "namespace": "ci",
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "blockOwnerDeletion": true,
                "controller": true,
                "kind": "ReplicaSet",
                "name": "ci-runner-6d9f8b7c5",
                "uid": "2e4c6a8b-0d1f-4e3a-8c5b-7d9e1f3a5c7b",
            }],
        },
        "spec": runner_spec(extra_env),
        "status": { "phase": "Pending", "qosClass": "Burstable" },
    })
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "annotations": { "deployment.kubernetes.io/revision": "1" },
            "generation": 1,
            "labels": runner_labels(),
            "name": "ci-runner",
            "namespace": "ci",
        },
        "spec": {
            "progressDeadlineSeconds": 600,
            "replicas": 12,
            "revisionHistoryLimit": 10,
            "selector": { "matchLabels": { "app.kubernetes.io/name": "ci-runner" } },
            "strategy": { "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" }, "type": "RollingUpdate" },
            "template": {
                "metadata": { "annotations": runner_annotations(), "labels": runner_labels() },
                "spec": runner_spec(Vec::new()),
            },
        },
        "status": {},
    })
}

fn review(group: &str, version: &str, kind: &str, resource: &str, object: Value, username: &str) -> Value {
    let gvk = json!({ "group": group, "version": version, "kind": kind });
    let gvr = json!({ "group": group, "version": version, "resource": resource });
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": object["metadata"]["name"],
            "namespace": "ci",
            "operation": "CREATE",
            "userInfo": {
                "username": username,
                "uid": "a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
            },
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": { "apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions" },
        },
    })
}

/// The AdmissionReview of a read-only Sysbox pod created by a ReplicaSet
/// (about 6 KB).
pub fn review_pod() -> Value {
    review("", "v1", "Pod", "pods", pod(Vec::new()), "system:serviceaccount:kube-system:replicaset-controller")
}

/// The AdmissionReview of the Deployment that owns those pods.
pub fn review_deployment() -> Value {
    review("apps", "v1", "Deployment", "deployments", deployment(), "ci-admin@example.com")
}

/// The same pod with a generated environment that brings the body to about
/// `bytes` (1 MiB in the benchmarks).
pub fn review_big_pod(bytes: usize) -> Value {
    let base = serde_json::to_vec(&review_pod()).expect("serialise").len();
    let mut rng = Rng::new(42);
    let mut extra = Vec::new();
    let mut size = base;
    let mut i = 0;
    while size < bytes {
        let name = format!("APP_CONFIG_{i:05}");
        // a base64-looking value, as a rendered configuration would be
        let value = rng.hex(240);
        size += name.len() + value.len() + r#",{"name":"","value":""}"#.len();
        extra.push(env(&name, &value));
        i += 1;
    }
    review("", "v1", "Pod", "pods", pod(extra), "system:serviceaccount:kube-system:replicaset-controller")
}

/// `request.object` of a review body.
pub fn object_of(review: &Value) -> Value {
    review["request"]["object"].clone()
}
