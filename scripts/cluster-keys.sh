#!/bin/sh
# cluster-keys.sh: the CurveZMQ keys of a stage-node cluster: one keypair per node
# (`stage-node keygen`) and the allow list that maps each public key to its node name
# (`--curve-allow`, one "<40-char Z85 public key> <node-name>" line per node).
# docs/deploy.md says when to run which command; docs/security.md what the keys protect.
#
# Usage:
#   cluster-keys.sh dir DIR NAME...     keypair DIR/NAME/node.key (+ .pub) for each NAME that
#                                       has none yet; then DIR/allow/allow.list for exactly
#                                       these NAMEs (rewritten only when it changes).
#                                       Idempotent: a second run changes nothing.
#   cluster-keys.sh rotate DIR NAME...  a fresh keypair for each NAME (the old one is deleted),
#                                       then the allow list of the same nodes as before.
#   cluster-keys.sh k8s N [KEYDIR]      print a Kubernetes Secret with the keys of pods
#                                       stage-node-0 .. stage-node-(N-1): data NAME.key per pod
#                                       and allow.list. Keys are kept in KEYDIR (reused when
#                                       present, so scaling up keeps the others); without
#                                       KEYDIR they are made in a temporary directory and
#                                       deleted. Never commit the output: it holds secrets.
#
# Environment:
#   STAGE_NODE     the stage-node binary that runs `keygen` (default: stage-node on PATH,
#                  else build/stage-node of this repository)
#   SN_KEYS_OWNER  UID:GID given each secret key file (chown; needs CAP_CHOWN): the compose
#                  `keys` service runs as root and hands the keys to the node user
#   SN_STATEFULSET StatefulSet name for k8s (default stage-node); SN_SECRET the Secret name
#                  (default stage-node-keys)
# Exit status: 0 done, 1 a step failed, 2 bad usage. Messages go to stderr.
set -eu

prog=cluster-keys.sh
die() { echo "$prog: $*" >&2; exit 1; }
usage() {
    cat >&2 <<'EOF'
usage: cluster-keys.sh dir DIR NAME...      keypairs DIR/NAME/node.key (missing ones) + DIR/allow/allow.list
       cluster-keys.sh rotate DIR NAME...   fresh keypairs for NAMEs, the allow list updated
       cluster-keys.sh k8s N [KEYDIR]       print a Secret for pods stage-node-0 .. stage-node-(N-1)
EOF
    exit 2
}

# A node name: what --name gets and what the allow list names. Letters, digits, '.', '_',
# '-', starting with a letter or digit, at most 63 characters (also a DNS label, so that
# `--join NAME:PORT` finds the key by the first label of the host).
check_name() {
    case $1 in
        '' | [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) die "bad node name '$1' (letters, digits, . _ -)" ;;
    esac
    [ "${#1}" -le 63 ] || die "node name '$1' is longer than 63 characters"
    [ "$1" != allow ] || die "'allow' is reserved (DIR/allow holds the allow list)"
}

find_stage_node() {
    if [ -n "${STAGE_NODE:-}" ]; then echo "$STAGE_NODE"; return; fi
    if command -v stage-node >/dev/null 2>&1; then command -v stage-node; return; fi
    here=$(cd "$(dirname "$0")/.." && pwd)
    [ -x "$here/build/stage-node" ] && { echo "$here/build/stage-node"; return; }
    die "no stage-node binary: build it (make build) or set STAGE_NODE"
}

# The public key of DIR/NAME, checked: 40 characters of Z85.
public_key() {
    key=$(head -n 1 "$1/$2/node.key.pub" 2>/dev/null) || die "$1/$2/node.key.pub unreadable"
    printf '%s\n' "$key" | LC_ALL=C grep -Eqx '[][0-9A-Za-z.:+=^!/*?&<>(){}@%$#-]{40}' \
        || die "$1/$2/node.key.pub: not a 40-character Z85 public key"
    printf '%s\n' "$key"
}

# keypair DIR NAME: DIR/NAME/node.key and node.key.pub unless both exist.
keypair() {
    mkdir -p "$1/$2"
    if [ -e "$1/$2/node.key" ] && [ -e "$1/$2/node.key.pub" ]; then
        echo "$prog: $2: keypair exists, kept" >&2
        return
    fi
    # Half a keypair (an interrupted run) is useless: start again.
    rm -f "$1/$2/node.key" "$1/$2/node.key.pub"
    "$(find_stage_node)" keygen "$1/$2/node.key" >/dev/null || die "$2: keygen failed"
    if [ -n "${SN_KEYS_OWNER:-}" ]; then
        chown "$SN_KEYS_OWNER" "$1/$2/node.key" || die "$2: chown $SN_KEYS_OWNER failed"
    fi
    pub=$(public_key "$1" "$2") || exit 1
    echo "$prog: $2: new keypair, public key $pub" >&2
}

# allow_list DIR NAME...: DIR/allow/allow.list for these NAMEs (sorted, so that the same
# nodes always give the same file), replaced atomically and only when its content changes.
allow_list() {
    dir=$1; shift
    # shellcheck disable=SC2046  # node names are single words (check_name)
    set -- $(printf '%s\n' "$@" | LC_ALL=C sort -u)
    mkdir -p "$dir/allow"
    tmp="$dir/allow/.allow.list.$$"
    lines=""
    for n in "$@"; do
        pub=$(public_key "$dir" "$n") || exit 1
        lines="$lines$pub $n
"
    done
    {
        echo "# stage-node allow list (--curve-allow), written by scripts/cluster-keys.sh:"
        echo "# <40-char Z85 public key> <node name>; only these nodes may connect."
        printf '%s' "$lines"
    } >"$tmp" || { rm -f "$tmp"; die "cannot write $tmp"; }
    chmod 0644 "$tmp"
    if cmp -s "$tmp" "$dir/allow/allow.list"; then
        rm -f "$tmp"
        echo "$prog: $dir/allow/allow.list unchanged ($# nodes)" >&2
    else
        mv -f "$tmp" "$dir/allow/allow.list" || { rm -f "$tmp"; die "cannot replace allow.list"; }
        echo "$prog: $dir/allow/allow.list written ($# nodes: $*)" >&2
    fi
}

# The node names of DIR/allow/allow.list (the second word of each key line).
nodes_in() {
    [ -r "$1/allow/allow.list" ] || die "$1/allow/allow.list missing: run '$prog dir' first"
    awk '$0 !~ /^[ \t]*(#|$)/ { print $2 }' "$1/allow/allow.list"
}

# yaml_block FILE: FILE's lines indented for a YAML literal block.
yaml_block() { sed 's/^/    /' "$1"; }

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
    dir)
        [ $# -ge 2 ] || usage
        dir=$1; shift
        for n in "$@"; do check_name "$n"; done
        mkdir -p "$dir" || die "cannot create $dir"
        for n in "$@"; do keypair "$dir" "$n"; done
        allow_list "$dir" "$@"
        ;;
    rotate)
        [ $# -ge 2 ] || usage
        dir=$1; shift
        members=$(nodes_in "$dir") || exit 1
        for n in "$@"; do
            check_name "$n"
            printf '%s\n' "$members" | grep -qxF -- "$n" || die "$n is not in $dir/allow/allow.list"
        done
        for n in "$@"; do
            rm -f "$dir/$n/node.key" "$dir/$n/node.key.pub"
            keypair "$dir" "$n"
        done
        # The same members as before, with the new keys.
        # shellcheck disable=SC2086  # node names are single words (check_name)
        allow_list "$dir" $members
        ;;
    k8s)
        { [ $# -ge 1 ] && [ $# -le 2 ]; } || usage
        count=$1
        case $count in '' | *[!0-9]*) die "N must be a number of pods" ;; esac
        { [ "$count" -ge 1 ] && [ "$count" -le 1000 ]; } || die "N must be 1..1000"
        sts=${SN_STATEFULSET:-stage-node}
        secret=${SN_SECRET:-stage-node-keys}
        if [ $# -eq 2 ]; then
            dir=$2
            { mkdir -p "$dir" && chmod 0700 "$dir"; } || die "cannot create $dir"
        else
            dir=$(mktemp -d "${TMPDIR:-/tmp}/cluster-keys.XXXXXX") || die "mktemp failed"
            trap 'rm -rf "$dir"' EXIT
            trap 'exit 1' HUP INT TERM
        fi
        names=""
        i=0
        while [ "$i" -lt "$count" ]; do names="$names $sts-$i"; i=$((i + 1)); done
        # shellcheck disable=SC2086  # the names are checked words
        for n in $names; do check_name "$n"; keypair "$dir" "$n"; done
        # shellcheck disable=SC2086
        allow_list "$dir" $names
        echo "# Generated by scripts/cluster-keys.sh k8s $count: SECRET KEYS, do not commit."
        echo "# kubectl apply -f FILE (in the namespace of the StatefulSet), then restart its pods."
        echo "apiVersion: v1"
        echo "kind: Secret"
        echo "metadata:"
        echo "  name: $secret"
        echo "  labels:"
        echo "    app.kubernetes.io/name: $sts"
        echo "    app.kubernetes.io/component: keys"
        echo "type: Opaque"
        echo "stringData:"
        for n in $names; do
            echo "  $n.key: |"
            yaml_block "$dir/$n/node.key"
        done
        echo "  allow.list: |"
        yaml_block "$dir/allow/allow.list"
        ;;
    -h | --help | help) usage ;;
    *) usage ;;
esac
