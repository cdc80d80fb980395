#!/usr/bin/env bash
# Turn sysbox-mgr's --relaxed-read-only on through the Sysbox installer's
# ConfigMap, kube-system/sysbox-operational-attributes, key SYSBOX_MGR_CONFIG.
#
#   enable-relaxed-read-only.sh show               # current flags and verdict
#   enable-relaxed-read-only.sh enable             # put --relaxed-read-only first, keep the rest
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

# effective FLAGS: "true" or "false" by a plain reading of the words
# (-relaxed-read-only or --relaxed-read-only, optional =true|false, last wins).
# sysbox-mgr itself stops reading flags at the first word that is not one (and
# a flag such as --data-root takes the next word as its value), so a mention
# late in the line can be lost: `sysbox-ro-webhook check --cluster-state` with
# the ConfigMap in the file judges the line exactly as sysbox-mgr reads it.
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

# without_flag FLAGS: FLAGS without any mention of relaxed-read-only.
without_flag() {
  local word
  local -a words=() kept=()
  read -r -a words <<<"$1"
  for word in "${words[@]}"; do
    case "$word" in
      -relaxed-read-only | --relaxed-read-only | -relaxed-read-only=* | --relaxed-read-only=*) ;;
      *) kept+=("$word") ;;
    esac
  done
  printf '%s' "${kept[*]}"
}

# on_first FLAGS: whether FLAGS starts with the flag turned on and mentions it
# nowhere else, the one form every sysbox-mgr reads the same way.
on_first() {
  local -a words=()
  read -r -a words <<<"$1"
  case "${words[0]:-}" in
    -relaxed-read-only | --relaxed-read-only | -relaxed-read-only=true | --relaxed-read-only=true) ;;
    *) return 1 ;;
  esac
  [[ $(without_flag "${words[*]:1}") == "${words[*]:1}" ]]
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
    if on_first "$flags"; then
      echo "$KEYNAME already turns --relaxed-read-only on: \"$flags\""
      exit 0
    fi
    # First, so sysbox-mgr reads it before any stray word or flag value that
    # would end its flag parsing; every other mention dropped, so none
    # overrides it later in the line.
    rest=$(without_flag "$flags")
    new="--relaxed-read-only${rest:+ $rest}"
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
