//go:build e2e

// Package containers tests maillab as a container on a real Docker engine:
// the image (build/Dockerfile), the testcontainers-go module
// (testcontainers/maillab), a client container whose system resolver is
// the lab's DNS, and the classroom docker-compose.yml.
//
//	go test -tags e2e ./e2e/containers/
//
// Without a Docker engine every test skips with one line saying why; with
// MAILLAB_REQUIRE_DOCKER=1 (CI sets it where `docker info` succeeds) a
// missing engine fails them instead. Nothing is pulled: TestMain builds the
// maillab binary and the image from this checkout, and removes the image,
// every container and every network the tests made.
package containers

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// requireDockerEnv makes a missing Docker engine a failure, not a skip.
const requireDockerEnv = "MAILLAB_REQUIRE_DOCKER"

var (
	// dockerMissing says why no Docker engine can be used ("" if one can).
	dockerMissing string
	// setupErr is a failure to build the binary or the image on an engine
	// that works: every test fails with it.
	setupErr error
	// image is the tag of the image TestMain built.
	image string
	// hostBinary is the maillab binary TestMain built, for clients that
	// run on the host or in a network namespace of it.
	hostBinary string
	// repoRoot is the checkout's top directory.
	repoRoot string
)

func TestMain(m *testing.M) {
	flag.Parse()
	// Ryuk (the reaper container) would have to be pulled. testcontainers
	// reads its configuration once, so this must precede every call.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	if !testing.Verbose() {
		// Each test hands its containers a logger of its own (shown when
		// it fails); this silences the engine banner and the builds.
		tclog.SetDefault(tclog.NewNoopLogger())
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/containers:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	if testing.Short() {
		dockerMissing = "-short: containers are not started"
		return m.Run(), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	if repoRoot, err = findRepoRoot(); err != nil {
		return 1, err
	}
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		dockerMissing = "no Docker engine: " + oneLine(err)
		return m.Run(), nil
	}
	defer provider.Close()
	if err := provider.Health(ctx); err != nil {
		dockerMissing = "no Docker engine answers: " + oneLine(err)
		return m.Run(), nil
	}
	dir, err := os.MkdirTemp("", "maillab-e2e-containers-*")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	tag, err := buildImage(ctx, provider, dir)
	if err != nil {
		setupErr = err
		return m.Run(), nil
	}
	image = tag
	code := m.Run()
	rmCtx, rmCancel := context.WithTimeout(context.Background(), time.Minute)
	defer rmCancel()
	leakErr := removeLeftovers(rmCtx, provider.Client())
	// The image goes last: every test has removed its containers.
	if _, err := provider.Client().ImageRemove(rmCtx, image, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
		return code, fmt.Errorf("remove image %s: %w", image, err)
	}
	return code, leakErr
}

// removeLeftovers removes, and reports as an error, containers and
// networks of this test session (testcontainers labels them) that a test
// did not clean up.
func removeLeftovers(ctx context.Context, cli client.APIClient) error {
	session := client.Filters{}.Add("label", "org.testcontainers.sessionId="+testcontainers.SessionID())
	var left []string
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: session})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs.Items {
		left = append(left, "container "+c.ID[:12])
		cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: session})
	if err != nil {
		return fmt.Errorf("list networks: %w", err)
	}
	for _, n := range ns.Items {
		left = append(left, "network "+n.Name)
		cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
	}
	if len(left) > 0 {
		return fmt.Errorf("tests left %v behind (now removed)", left)
	}
	return nil
}

// oneLine joins the lines of an error (testcontainers' have several).
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// missingTool skips t with a one-line reason, or fails it when CI=true:
// CI installs every tool, so a missing one there is a broken install step.
func missingTool(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(reason + "; CI=true requires every tool")
	}
	t.Skip(reason)
}

// requireDocker skips t without a Docker engine (fails it under
// MAILLAB_REQUIRE_DOCKER=1) and fails it if the image could not be built.
func requireDocker(t *testing.T) {
	t.Helper()
	if dockerMissing != "" {
		if os.Getenv(requireDockerEnv) == "1" {
			t.Fatalf("%s=1 but %s", requireDockerEnv, dockerMissing)
		}
		t.Skip(dockerMissing)
	}
	if setupErr != nil {
		t.Fatalf("setup: %v", setupErr)
	}
}

// buildImage builds the maillab binary for the engine's platform and the
// image of build/Dockerfile from a context archive holding the Dockerfile,
// the binary and the image's two directories: what scripts/build-image.sh
// sends, without the docker CLI.
func buildImage(ctx context.Context, p *testcontainers.DockerProvider, dir string) (string, error) {
	// Containers run on this machine's architecture; the engine is local.
	bin := filepath.Join(dir, "maillab")
	if err := goBuild(ctx, bin, "linux", runtime.GOARCH); err != nil {
		return "", err
	}
	hostBinary = bin
	dockerfile, err := os.ReadFile(filepath.Join(repoRoot, "build", "Dockerfile"))
	if err != nil {
		return "", err
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	archive, err := contextArchive(dockerfile, binary)
	if err != nil {
		return "", err
	}
	version := "e2e"
	req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		ContextArchive: bytes.NewReader(archive),
		Repo:           "maillab-e2e",
		Tag:            fmt.Sprintf("%d", time.Now().UnixNano()),
		KeepImage:      true,
		BuildArgs:      map[string]*string{"VERSION": &version},
		BuildLogWriter: io.Discard,
	}}
	tag, err := p.BuildImage(ctx, req)
	if err != nil {
		return "", fmt.Errorf("build image: %w", err)
	}
	return tag, nil
}

func goBuild(ctx context.Context, out, goos, goarch string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/maillab")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if outErr, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/maillab: %w\n%s", err, outErr)
	}
	return nil
}

// contextArchive is the build context as a tar stream: the entry named
// exactly "Dockerfile", the binary, and rootfs.tar with /tmp (root, 1777)
// and /lab (the image's user 65532, 0755), as scripts/build-image.sh
// makes them.
func contextArchive(dockerfile, binary []byte) ([]byte, error) {
	rootfs, err := tarOf([]tarEntry{
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "lab/", mode: 0o755, dir: true, uid: 65532},
	})
	if err != nil {
		return nil, err
	}
	return tarOf([]tarEntry{
		{name: "Dockerfile", mode: 0o644, data: dockerfile},
		{name: "maillab", mode: 0o755, data: binary},
		{name: "rootfs.tar", mode: 0o644, data: rootfs},
	})
}

type tarEntry struct {
	name string
	mode int64
	data []byte
	dir  bool
	uid  int // and gid
}

func tarOf(entries []tarEntry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.data)), ModTime: now, Typeflag: tar.TypeReg, Uid: e.uid, Gid: e.uid}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// findRepoRoot walks up from the test's directory to go.mod.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test directory")
		}
		dir = parent
	}
}

// TestImage checks what build/Dockerfile promises: an unprivileged user,
// /lab a volume the user owns, /tmp writable by anyone (sticky), no
// EXPOSE (so `docker run -P` publishes nothing on every interface), and
// the binary as entrypoint.
func TestImage(t *testing.T) {
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	img, err := cli.ImageInspect(ctx, image)
	if err != nil {
		t.Fatalf("inspect %s: %v", image, err)
	}
	cfg := img.Config
	if cfg.User != "65532:65532" {
		t.Errorf("image user = %q, want 65532:65532", cfg.User)
	}
	if _, ok := cfg.Volumes["/lab"]; !ok {
		t.Errorf("image volumes = %v, want /lab", cfg.Volumes)
	}
	if len(cfg.ExposedPorts) != 0 {
		t.Errorf("image exposes %v, want nothing", cfg.ExposedPorts)
	}
	if strings.Join(cfg.Entrypoint, " ") != "/maillab" {
		t.Errorf("image entrypoint = %q, want /maillab", cfg.Entrypoint)
	}
	// OCI annotations (image-spec annotations.md) from build/Dockerfile;
	// buildImage passes VERSION=e2e.
	for key, want := range map[string]string{
		"org.opencontainers.image.title":    "maillab",
		"org.opencontainers.image.version":  "e2e",
		"org.opencontainers.image.revision": "",
		"org.opencontainers.image.created":  "",
		"org.opencontainers.image.source":   "https://github.com/maillab/maillab",
	} {
		got, ok := cfg.Labels[key]
		if !ok || (want != "" && got != want) {
			t.Errorf("image label %s = %q (present %v), want %q", key, got, ok, want)
		}
	}
	t.Logf("image %s: %.1f MiB", image, float64(img.Size)/(1<<20))

	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{Image: image},
		Started:          false,
		Logger:           tclog.TestLogger(t),
	})
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	for _, tc := range []struct {
		path string
		mode os.FileMode
		uid  int
	}{
		{"/tmp", os.ModeDir | os.ModeSticky | 0o777, 0},
		{"/lab", os.ModeDir | 0o755, 65532},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res, err := cli.CopyFromContainer(ctx, ctr.GetContainerID(), client.CopyFromContainerOptions{SourcePath: tc.path})
			if err != nil {
				t.Fatalf("copy %s: %v", tc.path, err)
			}
			defer res.Content.Close()
			if res.Stat.Mode != tc.mode {
				t.Errorf("%s mode = %v, want %v", tc.path, res.Stat.Mode, tc.mode)
			}
			h, err := tar.NewReader(res.Content).Next()
			if err != nil {
				t.Fatalf("read %s: %v", tc.path, err)
			}
			if h.Uid != tc.uid || h.Gid != tc.uid {
				t.Errorf("%s owner = %d:%d, want %d:%d", tc.path, h.Uid, h.Gid, tc.uid, tc.uid)
			}
		})
	}
}
