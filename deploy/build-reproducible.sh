#!/usr/bin/env bash
# Build the Perf-Aggregator image reproducibly from a commit and print its digests, so that two
# independent builders (the operator and any verifier) can compare them.
#
#   deploy/build-reproducible.sh [GIT_REF]        # default: HEAD; a release tag in practice
#
# What makes two builds of the same commit identical:
#   - the context is `git archive` of the commit, not the working tree (no local edits, no
#     untracked files, no .venv);
#   - SOURCE_DATE_EPOCH is the commit time, and BuildKit rewrites every file timestamp in the
#     layers to it (rewrite-timestamp=true, BuildKit >= 0.13);
#   - no provenance/SBOM attestations (they record the build time and the builder);
#   - a pinned BuildKit (a docker-container builder running BUILDKIT_IMAGE): layer compression
#     and image metadata come from BuildKit, so both builders must use the same version;
#   - everything else is pinned in deploy/Dockerfile (base image digest, hashed wheels).
#
# Environment:
#   IMAGE_NAME      local image name (default: perf-aggregator); tag = short commit
#   PLATFORM        default linux/amd64 (TDX, SEV-SNP, SGX and dstack hosts are all x86-64)
#   BUILDKIT_IMAGE  default moby/buildkit:v0.20.2 - agree on one (ideally name@sha256:...)
#   PUSH            registry/name:tag - push the built manifest straight from BuildKit instead
#                   of loading it into the local docker. Use this to publish: `docker push` of
#                   a loaded image re-compresses the layers and yields a different digest.
#
# Output: the image config digest (the image ID: covers every file and the configuration) and
# the manifest digest (what `image@sha256:...` pins and what a registry serves), plus
# build/reproducible/<commit>.metadata.json.
set -euo pipefail

cd "$(dirname "$0")/.."

ref="${1:-HEAD}"
IMAGE_NAME="${IMAGE_NAME:-perf-aggregator}"
PLATFORM="${PLATFORM:-linux/amd64}"
BUILDKIT_IMAGE="${BUILDKIT_IMAGE:-moby/buildkit:v0.20.2}"
PUSH="${PUSH:-}"

die() { echo "error: $*" >&2; exit 1; }

command -v git >/dev/null || die "git is required"
command -v docker >/dev/null || die "docker (with the buildx plugin) is required"
docker buildx version >/dev/null 2>&1 || die "docker buildx is required (BuildKit >= 0.13)"

commit="$(git rev-parse --verify "${ref}^{commit}")" || die "unknown ref: $ref"
short="$(git rev-parse --short=12 "$commit")"
SOURCE_DATE_EPOCH="$(git log -1 --format=%ct "$commit")"
export SOURCE_DATE_EPOCH

git cat-file -e "${commit}:deploy/Dockerfile" 2>/dev/null \
    || die "deploy/Dockerfile is not in commit $short: commit it first (the build uses the commit, not the working tree)"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "note: the working tree has uncommitted changes; they are NOT part of this build ($short)." >&2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/context"
git archive --format=tar "$commit" | tar -x -C "$work/context"

# One builder per BuildKit version, so a builder never silently changes under a name.
builder="perf-aggregator-repro-$(printf '%s' "$BUILDKIT_IMAGE" | tr -c 'A-Za-z0-9' '-' | cut -c1-60)"
if ! docker buildx inspect "$builder" >/dev/null 2>&1; then
    docker buildx create --name "$builder" --driver docker-container \
        --driver-opt "image=$BUILDKIT_IMAGE" >/dev/null
fi
buildkit_version="$(docker buildx inspect --bootstrap "$builder" | sed -n 's/^ *BuildKit version: *//p' | head -n1)"

mkdir -p build/reproducible
metadata="build/reproducible/${short}.metadata.json"

if [ -n "$PUSH" ]; then
    output="type=image,name=${PUSH},push=true,rewrite-timestamp=true"
else
    output="type=docker,name=${IMAGE_NAME}:${short},rewrite-timestamp=true"
fi

docker buildx build \
    --builder "$builder" \
    --platform "$PLATFORM" \
    --no-cache \
    --provenance=false \
    --sbom=false \
    --build-arg "SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH}" \
    --build-arg "VCS_REF=${commit}" \
    --file "$work/context/deploy/Dockerfile" \
    --output "$output" \
    --metadata-file "$metadata" \
    "$work/context"

field() {
    # A top-level string field of the metadata file (no jq needed).
    sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\\(sha256:[0-9a-f]\\{64\\}\\)\".*/\\1/p" "$metadata" | head -n1
}
config_digest="$(field 'containerimage.config.digest')"
manifest_digest="$(field 'containerimage.digest')"

cat <<EOF

commit             $commit
SOURCE_DATE_EPOCH  $SOURCE_DATE_EPOCH ($(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo "?"))
platform           $PLATFORM
BuildKit           $BUILDKIT_IMAGE (${buildkit_version:-unknown version})
image              ${PUSH:-${IMAGE_NAME}:${short}}
config digest      ${config_digest:-not reported (see $metadata)}
manifest digest    ${manifest_digest:-not reported (see $metadata)}

Two builders of the same commit with the same BuildKit must print the same two digests.
Pin the image by the manifest digest (e.g. in deploy/dstack/docker-compose.yaml).
EOF
