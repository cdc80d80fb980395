#!/usr/bin/env bash
# SARIF validation for `sysbox-ro-webhook check -o sarif`, with two validators
# from package registries, cached under ${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}:
#
#   - Microsoft's SARIF Multitool (npm @microsoft/sarif-multitool): the SARIF
#     SDK's own `validate`, which checks the log against the SARIF 2.1.0 schema
#     and the spec's rules (SARIF1xxx errors, SARIF2xxx best practices);
#   - Python jsonschema (PyPI) against the SARIF 2.1.0 JSON schema that the
#     Multitool package ships (sarif-2.1.0.json), which also checks enums.
#
# Usage:
#   validate-sarif.sh [install]     install both (idempotent; CI runs this before cargo test)
#   validate-sarif.sh installed     exit 0 when both are installed, 3 otherwise
#   validate-sarif.sh validate FILE...
#                                   validate SARIF files; exit 1 on any problem
#
# A Multitool warning fails validation too, except SARIF2005 about a missing
# tool informationUri (the project has no public web page to point to yet).
set -euo pipefail

MULTITOOL_VERSION=5.7.0
JSONSCHEMA_VERSION=4.26.0
CACHE="${SYSBOX_RO_CACHE:-$HOME/.cache/sysbox-ro-webhook}"
PKG="$CACHE/node_modules/@microsoft/sarif-multitool-linux"
MULTITOOL="$PKG/Sarif.Multitool"
SCHEMA="$PKG/sarif-2.1.0.json"
PY="$CACHE/venv/bin/python"
# The Multitool is a self-contained .NET program; don't make it need libicu.
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

installed() {
    [ -x "$MULTITOOL" ] && [ -f "$SCHEMA" ] &&
        grep -q "\"version\": *\"$MULTITOOL_VERSION\"" "$PKG/package.json" 2>/dev/null &&
        [ -x "$PY" ] && "$PY" -c "import jsonschema" 2>/dev/null
}

install() {
    if installed; then
        echo "SARIF validators already installed in $CACHE"
        return 0
    fi
    mkdir -p "$CACHE"
    case "$(uname -s)/$(uname -m)" in
        Linux/x86_64) ;;
        *) echo "validate-sarif.sh: the Multitool package is installed for Linux x86_64 only" >&2; exit 1 ;;
    esac
    echo "installing @microsoft/sarif-multitool@$MULTITOOL_VERSION into $CACHE/node_modules"
    npm install --prefix "$CACHE" --no-audit --no-fund --no-save --loglevel=error \
        "@microsoft/sarif-multitool@$MULTITOOL_VERSION" "@microsoft/sarif-multitool-linux@$MULTITOOL_VERSION"
    # The package's postinstall (chmod) may not run under npm's install-script policy.
    chmod u+x "$MULTITOOL"
    echo "installing jsonschema==$JSONSCHEMA_VERSION into $CACHE/venv"
    [ -x "$PY" ] || python3 -m venv "$CACHE/venv"
    "$PY" -m pip install --quiet --disable-pip-version-check "jsonschema==$JSONSCHEMA_VERSION"
    installed || { echo "validate-sarif.sh: installation incomplete" >&2; exit 1; }
    "$MULTITOOL" --version | head -n 1
}

validate() {
    installed || { echo "SARIF validators not installed: run $0 install" >&2; exit 3; }
    local status=0 f out
    for f in "$@"; do
        out="$(mktemp --suffix=.sarif)"
        if ! "$MULTITOOL" validate "$f" --output "$out" --log ForceOverwrite --quiet >/dev/null 2>&1; then
            echo "$f: the Multitool failed to run" >&2
            status=1
        fi
        "$PY" - "$f" "$out" "$SCHEMA" <<'PY' || status=1
import json, sys
import jsonschema

target, report, schema_path = sys.argv[1:4]
problems = []
try:
    log = json.load(open(report, encoding="utf-8-sig"))
except (OSError, ValueError) as e:
    problems.append(f"no Multitool report: {e}")
    log = {"runs": []}
for run in log.get("runs", []):
    rules = run.get("tool", {}).get("driver", {}).get("rules", [])
    for r in run.get("results", []):
        level = r.get("level", "warning")
        rule = r.get("ruleId", "?")
        message = r.get("message", {})
        args = message.get("arguments", [])
        text = message.get("text")
        if text is None:
            strings = next((x.get("messageStrings", {}) for x in rules if x.get("id") == rule), {})
            text = strings.get(message.get("id", ""), {}).get("text", "")
            for i, a in enumerate(args):
                text = text.replace("{%d}" % i, str(a))
        if rule == "SARIF2005" and "'informationUri'" in text:
            continue
        if level in ("error", "warning"):
            problems.append(f"Multitool {level} {rule}: {text or args}")
    for n in (run.get("invocations") or [{}])[0].get("toolExecutionNotifications", []):
        if n.get("level") == "error":
            problems.append(f"Multitool could not analyse the file: {n.get('message', {}).get('text')}")
schema = json.load(open(schema_path, encoding="utf-8-sig"))
doc = json.load(open(target, encoding="utf-8"))
validator = jsonschema.validators.validator_for(schema)(schema)
for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
    path = "/".join(str(p) for p in e.absolute_path)
    problems.append(f"schema: /{path}: {e.message}")
for p in problems:
    print(f"{target}: {p}")
print(f"{target}: {'INVALID' if problems else 'valid'} SARIF 2.1.0 ({len(problems)} problems)")
sys.exit(1 if problems else 0)
PY
        rm -f "$out"
    done
    return $status
}

case "${1:-install}" in
    install) install ;;
    installed) installed || exit 3 ;;
    validate) shift; [ $# -gt 0 ] || { echo "usage: $0 validate FILE..." >&2; exit 2; }; validate "$@" ;;
    *) echo "usage: $0 [install|installed|validate FILE...]" >&2; exit 2 ;;
esac
