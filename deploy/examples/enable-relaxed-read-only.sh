#!/usr/bin/env bash
# Turn sysbox-mgr's --relaxed-read-only on through the Sysbox installer's
# ConfigMap, kube-system/sysbox-operational-attributes, key SYSBOX_MGR_CONFIG.
#
#   enable-relaxed-read-only.sh show               # current flags and verdict
#   enable-relaxed-read-only.sh enable             # add --relaxed-read-only, keep the rest
#   enable-relaxed-read-only.sh restart-node NODE  # re-run the installer on one node
#
# The ConfigMap is cluster-wide, but it only reaches a node when the Sysbox
# installer pod (DaemonSet kube-system/sysbox-deploy-k8s, pods labelled
# sysbox-install=yes) on that node restarts. That reinstall EVICTS every pod on
# the node whose runtimeClassName is literally "sysbox-runc": do it one node at
# a time, cordoned and drained, in a maintenance window. To restart them all
# (rolling, as the DaemonSet's update strategy allows):
#   kubectl -n kube-system rollout restart ds/sysbox-deploy-k8s
#
# Then label the node's pool sysbox-ro.dev/relaxed-read-only=true
# (label-node-pool.sh), so sysbox-ro-webhook knows without guessing.
set -euo pipefail

readonly NS=kube-system CM=sysbox-operational-attributes KEYNAME=SYSBOX_MGR_CONFIG

usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
  exit 2
}

current() {
  kubectl -n "$NS" get configmap "$CM" -o "jsonpath={.data.$KEYNAME}"
}

# effective FLAGS: "true" or "false", as sysbox-mgr would parse the flag
# (-relaxed-read-only or --relaxed-read-only, optional =true|false, last wins).
effective() {
  local word result=false
  local -a words=()
  read -r -a words <<<"$1"
  for word in "${words[@]}"; do
    case "$word" in
      -relaxed-read-only | --relaxed-read-only | -relaxed-read-only=true | --relaxed-read-only=true) result=true ;;
      -relaxed-read-only=false | --relaxed-read-only=false) result=false ;;
    esac
  done
  printf '%s' "$result"
}

json_string() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

cmd=${1:-}
case "$cmd" in
  show)
    flags=$(current)
    echo "$KEYNAME=\"$flags\""
    echo "--relaxed-read-only in the ConfigMap: $(effective "$flags")"
    echo "(Nodes get it only after their installer pod restarts.)"
    ;;
  enable)
    flags=$(current)
    if [[ $(effective "$flags") == true ]]; then
      echo "$KEYNAME already turns --relaxed-read-only on: \"$flags\""
      exit 0
    fi
    new="${flags:+$flags }--relaxed-read-only"
    kubectl -n "$NS" patch configmap "$CM" --type merge \
      -p "{\"data\":{\"$KEYNAME\":$(json_string "$new")}}"
    echo "$KEYNAME is now \"$new\"."
    echo "Nothing changes on a node until its installer pod restarts: $0 restart-node NODE"
    ;;
  restart-node)
    [[ $# -eq 2 ]] || usage
    node=$2
    echo "Restarting the Sysbox installer on $node. Pods there with runtimeClassName sysbox-runc will be evicted." >&2
    kubectl -n "$NS" delete pod -l sysbox-install=yes --field-selector "spec.nodeName=$node"
    echo "Watch it come back: kubectl get node $node -L sysbox-runtime -w (wait for 'running')" >&2
    ;;
  *)
    usage
    ;;
esac
