#!/usr/bin/env bash
# Build the maillab container image without pulling anything.
#
#   scripts/build-image.sh [TAG]        default TAG: $MAILLAB_IMAGE or maillab:dev
#
# It compiles a static maillab binary on this machine (CGO_ENABLED=0, for
# the Docker engine's OS and architecture) and builds build/Dockerfile
# (FROM scratch) from a context that holds only the Dockerfile, the binary
# and rootfs.tar (/lab and /tmp), so it works where no registry is
# reachable.
# Needs: go, and docker with a running engine. docker-compose.yml and the
# e2e tests use the tag maillab:dev.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tag="${1:-${MAILLAB_IMAGE:-maillab:dev}}"

for tool in go docker; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "build-image: $tool not found in PATH" >&2
		exit 1
	fi
done
# The engine's platform, not the client's: the binary runs on the engine.
if ! platform="$(docker version --format '{{.Server.Os}}/{{.Server.Arch}}' 2>/dev/null)"; then
	echo "build-image: no Docker engine answers (docker version failed); start dockerd first" >&2
	exit 1
fi
goos="${platform%/*}"
goarch="${platform#*/}"

ctx="$(mktemp -d "${TMPDIR:-/tmp}/maillab-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT

version="$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || echo dev)"
revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
commit_date="$(git -C "$repo" show -s --format=%cI HEAD 2>/dev/null || echo unknown)"
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "build-image: compiling maillab ($version) for $goos/$goarch"
# The normal Go build cache of this machine keeps this step to seconds
# once warm (the first static build compiles every dependency). The -X
# values are what maillab --version prints where the toolchain cannot
# stamp VCS information itself (a git worktree; GOFLAGS=-buildvcs=false).
(cd "$repo" && CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" \
	go build -trimpath \
	-ldflags="-s -w -X main.linkedCommit=$revision -X main.linkedDate=$commit_date" \
	-o "$ctx/maillab" ./cmd/maillab)
digest="$(sha256sum "$ctx/maillab" | cut -d' ' -f1)"

# An image of exactly this binary and Dockerfile is already tagged: keep
# it (Docker's legacy builder takes 10-20 s even for this small image).
recipe="$(sha256sum "$repo/build/Dockerfile" | cut -d' ' -f1)"
if [ "${MAILLAB_IMAGE_REBUILD:-}" != 1 ] &&
	[ "$(docker image inspect --format '{{index .Config.Labels "dev.maillab.binary.sha256"}} {{index .Config.Labels "dev.maillab.dockerfile.sha256"}}' "$tag" 2>/dev/null || true)" = "$digest $recipe" ]; then
	echo "build-image: $tag already holds this binary (sha256 $digest); nothing to do (MAILLAB_IMAGE_REBUILD=1 forces a build)"
	exit 0
fi

cp "$repo/build/Dockerfile" "$ctx/Dockerfile"
# The image's directories: /tmp world-writable and sticky, /lab owned by
# the image's user (65532, "nonroot").
mkdir "$ctx/root" "$ctx/root/tmp" "$ctx/root/lab"
chmod 1777 "$ctx/root/tmp"
chmod 0755 "$ctx/root/lab"
tar -C "$ctx/root" --numeric-owner --owner=0 --group=0 -cf "$ctx/rootfs.tar" tmp
tar -C "$ctx/root" --numeric-owner --owner=65532 --group=65532 -rf "$ctx/rootfs.tar" lab
rm -r "$ctx/root"

echo "build-image: building $tag"
previous="$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
docker build --quiet --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created" \
	--label "dev.maillab.binary.sha256=$digest" --label "dev.maillab.dockerfile.sha256=$recipe" \
	--tag "$tag" "$ctx" >/dev/null
# The image the tag named before is now untagged: remove it unless a
# container still uses it.
current="$(docker image inspect --format '{{.Id}}' "$tag")"
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
	docker image rm "$previous" >/dev/null 2>&1 || true
fi
size="$(docker image inspect --format '{{.Size}}' "$tag")"
echo "build-image: $tag built ($((size / 1024 / 1024)) MiB); try: docker run --rm $tag scenario list"
