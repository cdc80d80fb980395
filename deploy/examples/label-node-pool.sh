#!/usr/bin/env bash
# Record on a node pool whether its sysbox-mgr runs with --relaxed-read-only,
# as the node label sysbox-ro.dev/relaxed-read-only=true|false.
#
# Set "true" only once the flag is really active on those nodes (see
# enable-relaxed-read-only.sh); the label is what sysbox-ro-webhook trusts.
# Put the label on the pool's own configuration, not on single nodes: a
# hand-set node label is lost when the node is replaced.
#
#   label-node-pool.sh gke    CLUSTER LOCATION POOL true|false KEEP_LABELS
#   label-node-pool.sh aks    RESOURCE_GROUP CLUSTER POOL true|false KEEP_LABELS
#   label-node-pool.sh eks    CLUSTER NODEGROUP true|false     # aws CLI
#   label-node-pool.sh eksctl CLUSTER NODEGROUP true|false
#   label-node-pool.sh node   NODE true|false                  # kubectl, one node
#
# gcloud and az REPLACE the pool's whole set of Kubernetes labels. KEEP_LABELS
# lists the labels the pool already has, comma-separated (k=v,k2=v2), or "-"
# for none; the script prints the current ones first. Forgetting one (for
# example sysbox-install=yes) removes it from every node of the pool.
# Karpenter: see karpenter-nodepool.yaml. New eksctl groups: eksctl-nodegroup.yaml.
set -euo pipefail

readonly KEY=sysbox-ro.dev/relaxed-read-only

usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
  exit 2
}

value() {
  case "$1" in
    true | false) printf '%s' "$1" ;;
    *) echo "value must be true or false, not '$1'" >&2; exit 2 ;;
  esac
}

# merge KEEP_LABELS SEPARATOR VALUE: KEEP_LABELS (minus any old value of
# KEY) plus KEY=VALUE, joined with SEPARATOR.
merge() {
  local keep=$1 sep=$2 val=$3 out="" label
  local -a labels=()
  if [[ $keep != "-" ]]; then
    IFS=',' read -r -a labels <<<"$keep"
  fi
  for label in "${labels[@]}"; do
    [[ -z $label || $label == "$KEY="* ]] && continue
    out+="$label$sep"
  done
  printf '%s%s=%s' "$out" "$KEY" "$val"
}

run() {
  printf '+ %s\n' "$*" >&2
  "$@"
}

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case "$cmd" in
  gke)
    [[ $# -eq 5 ]] || usage
    cluster=$1 location=$2 pool=$3 val=$(value "$4") keep=$5
    echo "Current Kubernetes labels of node pool $pool:" >&2
    run gcloud container node-pools describe "$pool" --cluster "$cluster" \
      --location "$location" --format='yaml(config.labels)'
    run gcloud container node-pools update "$pool" --cluster "$cluster" \
      --location "$location" --node-labels="$(merge "$keep" , "$val")"
    ;;
  aks)
    [[ $# -eq 5 ]] || usage
    group=$1 cluster=$2 pool=$3 val=$(value "$4") keep=$5
    echo "Current node labels of node pool $pool:" >&2
    run az aks nodepool show --resource-group "$group" --cluster-name "$cluster" \
      --name "$pool" --query nodeLabels
    # az takes space-separated key=value pairs.
    read -r -a pairs <<<"$(merge "$keep" ' ' "$val")"
    run az aks nodepool update --resource-group "$group" --cluster-name "$cluster" \
      --name "$pool" --labels "${pairs[@]}"
    ;;
  eks)
    [[ $# -eq 3 ]] || usage
    cluster=$1 nodegroup=$2 val=$(value "$3")
    # addOrUpdateLabels merges: the group's other labels are kept.
    run aws eks update-nodegroup-config --cluster-name "$cluster" \
      --nodegroup-name "$nodegroup" \
      --labels "{\"addOrUpdateLabels\":{\"$KEY\":\"$val\"}}"
    ;;
  eksctl)
    [[ $# -eq 3 ]] || usage
    cluster=$1 nodegroup=$2 val=$(value "$3")
    run eksctl set labels --cluster "$cluster" --nodegroup "$nodegroup" \
      --labels "$KEY=$val"
    ;;
  node)
    [[ $# -eq 2 ]] || usage
    node=$1 val=$(value "$2")
    run kubectl label node "$node" "$KEY=$val" --overwrite
    ;;
  *)
    usage
    ;;
esac

echo "Check what the nodes carry now:" >&2
echo "  kubectl get nodes -L $KEY -L sysbox-runtime" >&2
