#!/usr/bin/env python3
"""Soak of a release `serve` against a real kube-apiserver (not in CI): `make soak`.

For SOAK_SECONDS (default 600) it keeps a steady load of AdmissionReviews on the
webhook (SOAK_WORKERS keep-alive connections, default 4, each sending SOAK_RATE
reviews per second, default 25, and opening a new connection every 200
requests, so new handshakes meet rotated certificates), while:

- every SOAK_ROTATE seconds (30) a new serving pair, signed by the same CA, is
  published as a Kubernetes Secret volume does (a new `..<version>` folder and
  an atomic `..data` symlink swap); the server re-reads the files by itself;
- every SOAK_CHURN seconds (1) the flag label of one of the soak pool's five
  nodes flips through the real kube-apiserver (tests/e2e/control-plane.sh),
  which the webhook's live view watches and rebuilds its state from (the pool
  stays allowed: the other nodes keep the flag; the view rebuilds are counted).

It prints, per tenth of the run and at the end: requests, errors (transport
errors, non-200 answers, wrong uid), p50/p99/max latency, allowed/denied, the
certificates seen by new connections, and serve's RSS at start, middle and end
(VmRSS, VmHWM). Every process it starts is stopped on exit.

    SOAK_SECONDS=600 python3 benches/soak.py target/release/sysbox-ro-webhook
"""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
WORKERS = int(os.environ.get("SOAK_WORKERS", "4"))
RATE = float(os.environ.get("SOAK_RATE", "25"))
ROTATE = float(os.environ.get("SOAK_ROTATE", "30"))
CHURN = float(os.environ.get("SOAK_CHURN", "1"))
RECONNECT_EVERY = 200
FLAG = "sysbox-ro.dev/relaxed-read-only"
POOL_LABEL = "cloud.google.com/gke-nodepool"


def log(msg):
    print(f"[soak] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) // 1024
    except OSError:
        pass
    return out


def uptime_load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class SecretVolume:
    """A folder laid out as the kubelet lays out a Secret volume."""

    def __init__(self, root, binary):
        self.root, self.binary, self.version = root, binary, 0
        self.ca = os.path.join(root, "ca")
        run([binary, "certs", "--ip", "127.0.0.1", "--dns", "localhost", "--out", self.ca])
        self.dir = os.path.join(root, "volume")
        os.makedirs(self.dir)
        self.publish()
        for f in ("tls.crt", "tls.key"):
            os.symlink(os.path.join("..data", f), os.path.join(self.dir, f))

    def publish(self):
        self.version += 1
        staged = os.path.join(self.root, f"issue-{self.version}")
        run([self.binary, "certs", "--ip", "127.0.0.1", "--dns", "localhost", "--force", "--out", staged,
             "--ca-cert", os.path.join(self.ca, "ca.crt"), "--ca-key", os.path.join(self.ca, "ca.key")])
        name = f"..v{self.version}"
        os.makedirs(os.path.join(self.dir, name))
        for f in ("tls.crt", "tls.key"):
            shutil.copy(os.path.join(staged, f), os.path.join(self.dir, name, f))
        tmp = os.path.join(self.dir, "..data_tmp")
        if os.path.lexists(tmp):
            os.remove(tmp)
        os.symlink(name, tmp)
        os.rename(tmp, os.path.join(self.dir, "..data"))
        if self.version > 2:
            shutil.rmtree(os.path.join(self.dir, f"..v{self.version - 2}"), ignore_errors=True)
        shutil.rmtree(staged, ignore_errors=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def review_body(uid):
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "soak", "namespace": "soak"},
        "spec": {
            "runtimeClassName": "sysbox-runc", "hostUsers": False,
            "nodeSelector": {POOL_LABEL: "soak", "sysbox-runtime": "running"},
            "containers": [{"name": "dind", "image": "docker:27-dind",
                            "securityContext": {"readOnlyRootFilesystem": True}}],
        },
    }
    return json.dumps({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "soak", "name": "soak", "operation": "CREATE",
            "userInfo": {"username": "soak"}, "object": pod, "dryRun": True,
        },
    }).encode()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []  # (t, seconds)
        self.errors = []  # (t, text)
        self.allowed = 0
        self.denied = 0
        self.certs = set()

    def ok(self, t, seconds, allowed):
        with self.lock:
            self.latencies.append((t, seconds))
            if allowed:
                self.allowed += 1
            else:
                self.denied += 1

    def error(self, t, text):
        with self.lock:
            self.errors.append((t, text))


def worker(port, ca_file, stats, stop, start):
    ctx = ssl.create_default_context(cafile=ca_file)
    interval = 1.0 / RATE
    conn, sent = None, 0
    next_at = time.monotonic()
    while not stop.is_set():
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if conn is None or sent >= RECONNECT_EVERY:
            if conn is not None:
                conn.close()
            conn, sent = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10), 0
        uid = str(uuid.uuid4())
        t0 = time.monotonic()
        try:
            conn.request("POST", "/mutate?timeout=10s", review_body(uid), {"content-type": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
            took = time.monotonic() - t0
            if sent == 0 and conn.sock is not None:
                with stats.lock:
                    stats.certs.add(hash(conn.sock.getpeercert(binary_form=True)))
            sent += 1
            if resp.status != 200:
                stats.error(t0 - start, f"HTTP {resp.status}: {body[:200]!r}")
                continue
            answer = json.loads(body)["response"]
            if answer.get("uid") != uid:
                stats.error(t0 - start, f"uid {answer.get('uid')} for {uid}")
                continue
            stats.ok(t0 - start, took, bool(answer.get("allowed")))
            if resp.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except Exception as e:  # noqa: BLE001: every failure is an error of the soak
            stats.error(t0 - start, f"{type(e).__name__}: {e}")
            conn.close()
            conn = None


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def summary(label, lat, errors):
    s = sorted(x for _, x in lat)
    return (f"{label}: {len(lat)} ok, {len(errors)} errors, p50 {pct(s, 50) * 1000:.2f} ms, "
            f"p99 {pct(s, 99) * 1000:.2f} ms, max {(s[-1] if s else float('nan')) * 1000:.1f} ms")


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/sysbox-ro-webhook"))
    if not os.access(binary, os.X_OK):
        sys.exit(f"no binary at {binary} (make build)")
    work = tempfile.mkdtemp(prefix="sysbox-ro-soak-")
    cp_dir = os.path.join(work, "control-plane")
    script = os.path.join(ROOT, "tests/e2e/control-plane.sh")
    procs = []

    def cleanup(*_):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        subprocess.run(["bash", script, "stop", cp_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.environ.get("SOAK_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        log(f"control plane in {cp_dir}")
        env = dict(os.environ, CONTROL_PLANE_OWNER_PID=str(os.getpid()))
        kubeconfig = run(["bash", script, "start", cp_dir], env=env).stdout.strip().splitlines()[-1]
        kubectl_bin = [l.split("=", 1)[1] for l in open(os.path.join(cp_dir, "control-plane.env")) if l.startswith("BIN=")][0].strip()
        kubectl = [os.path.join(kubectl_bin, "kubectl"), "--kubeconfig", kubeconfig]
        objects = {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "soak"}},
            {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "sysbox-runc"},
             "handler": "sysbox-runc", "scheduling": {"nodeSelector": {"sysbox-runtime": "running"}}},
        ] + [
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"{pool}-{i}", "labels": {
                "kubernetes.io/hostname": f"{pool}-{i}", POOL_LABEL: pool, "sysbox-install": "yes",
                "sysbox-runtime": "running", FLAG: "true"}}}
            for pool in ("soak", "steady") for i in range(1, 6)
        ]}
        run(kubectl + ["apply", "-f", "-"], input=json.dumps(objects))
        run(kubectl + ["taint", "nodes", "--all", "node.kubernetes.io/not-ready:NoSchedule-"])

        volume = SecretVolume(work, binary)
        port, admin = free_port(), free_port()
        serve_log = open(os.path.join(work, "serve.log"), "w")
        serve = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
             "--kubeconfig", kubeconfig, "--tls-cert", os.path.join(volume.dir, "tls.crt"),
             "--tls-key", os.path.join(volume.dir, "tls.key"), "--log-format", "json", "--log", "warn",
             "--shutdown-delay", "0"],
            stdout=serve_log, stderr=serve_log, stdin=subprocess.DEVNULL)
        procs.append(serve)
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", admin, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or serve.poll() is not None:
                sys.exit("serve did not become ready; see " + serve_log.name)
            time.sleep(0.2)

        stats, stop = Stats(), threading.Event()
        start = time.monotonic()
        rss_marks = [("start", rss(serve.pid))]
        log(f"serve pid {serve.pid} ready; load {uptime_load()}; {WORKERS} x {RATE:g}/s for {SECONDS:g} s, "
            f"rotation every {ROTATE:g} s, label churn every {CHURN:g} s")
        threads = [threading.Thread(target=worker, args=(port, os.path.join(volume.ca, "ca.crt"), stats, stop, start))
                   for _ in range(WORKERS)]
        for t in threads:
            t.start()

        rotations = churns = churn_failures = 0
        next_rotate, next_churn, next_report = ROTATE, CHURN, SECONDS / 10
        flag = "true"
        mid_taken = False
        while (now := time.monotonic() - start) < SECONDS:
            if serve.poll() is not None:
                sys.exit(f"serve exited with {serve.returncode}; see {serve_log.name}")
            if now >= next_rotate:
                volume.publish()
                rotations += 1
                next_rotate += ROTATE
            if now >= next_churn:
                flag = "false" if flag == "true" else "true"
                r = subprocess.run(kubectl + ["label", "node", "soak-1", f"{FLAG}={flag}", "--overwrite"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                churns += 1
                churn_failures += r.returncode != 0
                next_churn += CHURN
            if not mid_taken and now >= SECONDS / 2:
                rss_marks.append(("mid", rss(serve.pid)))
                mid_taken = True
            if now >= next_report:
                with stats.lock:
                    window = [(t, x) for t, x in stats.latencies if t >= next_report - SECONDS / 10]
                    errs = [e for e in stats.errors if e[0] >= next_report - SECONDS / 10]
                log(summary(f"{next_report:5.0f} s", window, errs) + f"; RSS {rss(serve.pid)}; load {uptime_load()}")
                next_report += SECONDS / 10
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
        rss_marks.append(("end", rss(serve.pid)))

        metrics = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
        metrics.request("GET", "/metrics")
        text = metrics.getresponse().read().decode()
        reloads = [l for l in text.splitlines() if l.startswith("sysbox_ro_tls_reloads_total")]
        rebuilds = [l for l in text.splitlines() if l.startswith("sysbox_ro_cluster_view_rebuilds_total")]

        print(f"soak: {SECONDS:g} s, {WORKERS} connections x {RATE:g} reviews/s, new connection every "
              f"{RECONNECT_EVERY} requests; machine load at the end {uptime_load()} ({os.cpu_count()} cores)")
        print(summary("reviews", stats.latencies, stats.errors))
        print(f"verdicts: {stats.allowed} allowed, {stats.denied} denied")
        print(f"certificate rotations: {rotations}; distinct certificates seen by new connections: {len(stats.certs)}; "
              + ", ".join(reloads))
        print(f"label changes: {churns} ({churn_failures} failed); " + ", ".join(rebuilds))
        print("serve RSS (MiB): " + "; ".join(f"{k} {v.get('VmRSS')} (peak {v.get('VmHWM')})" for k, v in rss_marks))
        for t, e in stats.errors[:10]:
            print(f"  error at {t:.1f} s: {e}")
        return 1 if stats.errors else 0
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
