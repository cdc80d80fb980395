# The part of `sysbox-ro-webhook check` (without a cluster state) that a
# conftest policy can express: a workload whose pod runs on a Sysbox
# RuntimeClass and has a container with `readOnlyRootFilesystem: true` is in
# scope, and without a cluster state `check` reports it with the finding
# `pools-not-evaluated`. Here each such object is one warning, written
# `Kind namespace/name: ...` so that benches/conftest.sh can compare the
# flagged objects with `check -o json`.
#
# What `check` decides beyond this (the node-pool verdict, the hygiene rules,
# the patch) needs the cluster state or the engine and is not expressed here.
package main

# `check --sysbox-class` (default `sysbox-runc`): RuntimeClass names taken as
# Sysbox when the cluster state is not known.
sysbox_classes := {"sysbox-runc"}

# The policy's default exempt namespaces.
exempt_namespaces := {"kube-system"}

# `check -n` (the namespace of objects whose manifest names none).
default_namespace := "default"

# Judged kinds by API group and kind, and where each keeps its pod template
# (src/engine/subject.rs, `Kind::template_path`).
template_paths := {
	"/Pod": [],
	"/PodTemplate": ["template"],
	"apps/Deployment": ["spec", "template"],
	"apps/StatefulSet": ["spec", "template"],
	"apps/DaemonSet": ["spec", "template"],
	"apps/ReplicaSet": ["spec", "template"],
	"batch/Job": ["spec", "template"],
	"batch/CronJob": ["spec", "jobTemplate", "spec", "template"],
}

container_fields := ["containers", "initContainers", "ephemeralContainers"]

# The API group of an apiVersion: what stands before its last `/` (core: "").
api_group(api_version) := group if {
	parts := split(api_version, "/")
	group := concat("/", array.slice(parts, 0, count(parts) - 1))
}

# The objects of a document: the items of a List, or the document itself.
objects contains [sprintf(" (List item %d)", [i]), obj] if {
	endswith(input.kind, "List")
	is_array(input.items)
	some i, obj in input.items
}

objects contains ["", input] if {
	not list_document
}

list_document if {
	endswith(input.kind, "List")
	is_array(input.items)
}

namespace_of(obj) := ns if {
	ns := obj.metadata.namespace
	is_string(ns)
	ns != ""
} else := default_namespace

name_of(obj) := name if {
	name := obj.metadata.name
	is_string(name)
	name != ""
} else := name if {
	name := obj.metadata.generateName
	is_string(name)
	name != ""
} else := "<unnamed>"

template_of(obj) := template if {
	is_string(obj.apiVersion)
	is_string(obj.kind)
	path := template_paths[sprintf("%s/%s", [api_group(obj.apiVersion), obj.kind])]
	count(path) > 0
	template := object.get(obj, path, null)
	is_object(template)
}

template_of(obj) := obj if {
	is_string(obj.apiVersion)
	is_string(obj.kind)
	template_paths[sprintf("%s/%s", [api_group(obj.apiVersion), obj.kind])] == []
}

read_only_root(spec) if {
	some field in container_fields
	some container in spec[field]
	container.securityContext.readOnlyRootFilesystem == true
}

warn contains msg if {
	some [where, obj] in objects
	template := template_of(obj)
	class := template.spec.runtimeClassName
	is_string(class)
	sysbox_classes[class]
	ns := namespace_of(obj)
	not exempt_namespaces[ns]
	read_only_root(template.spec)
	msg := sprintf(
		"%s %s/%s: read-only root filesystem on the Sysbox RuntimeClass %s; node pools not evaluated%s",
		[obj.kind, ns, name_of(obj), class, where],
	)
}
