//go:build e2e

package containers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/settings"
)

// classroomScenarios are the services of docker-compose.yml; each is the
// scenario of the same name.
var classroomScenarios = []string{"healthy", "expired-cert", "wrong-password", "starttls-broken", "firewall-drop", "dns-outage"}

// composeTool is one implementation of the compose CLI.
type composeTool struct {
	name string   // for subtest names
	argv []string // the command before the compose arguments
}

// composeTools returns the compose implementations installed: the
// docker CLI plugin (v2) and the standalone docker-compose (v1 in Debian).
func composeTools(ctx context.Context) []composeTool {
	var tools []composeTool
	if exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil {
		tools = append(tools, composeTool{name: "docker-compose-v2", argv: []string{"docker", "compose"}})
	}
	if path, err := exec.LookPath("docker-compose"); err == nil {
		tools = append(tools, composeTool{name: "docker-compose", argv: []string{path}})
	}
	return tools
}

// classroom is a running docker-compose.yml project.
type classroom struct {
	tool      composeTool
	project   string
	dir       string   // MAILLAB_CLASSROOM_DIR
	advertise string   // MAILLAB_ADVERTISE
	env       []string // the variables compose reads
	down      bool
}

// compose runs the compose tool on the repository's docker-compose.yml.
func (c *classroom) compose(ctx context.Context, args ...string) ([]byte, error) {
	argv := append(append([]string{}, c.tool.argv...), "-f", filepath.Join(repoRoot, "docker-compose.yml"), "-p", c.project)
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], args...)...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w\n%s", strings.Join(c.tool.argv, " "), strings.Join(args, " "), err, out)
	}
	return out, nil
}

// startClassroom validates docker-compose.yml and brings it up with the
// e2e image, publishing on publish and advertising advertise; the test
// brings it down again (and checks that down leaves nothing) unless it
// called stop itself.
func startClassroom(ctx context.Context, t *testing.T, tool composeTool, publish, advertise string) *classroom {
	t.Helper()
	c := &classroom{
		tool:      tool,
		project:   fmt.Sprintf("maillab-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6),
		dir:       t.TempDir(),
		advertise: advertise,
	}
	c.env = []string{
		"MAILLAB_IMAGE=" + image,
		"MAILLAB_CLASSROOM_DIR=" + c.dir,
		// The labs write as this test's user into its own directory, as
		// docs/classroom.md tells a trainer to.
		fmt.Sprintf("MAILLAB_USER=%d:%d", os.Getuid(), os.Getgid()),
		"MAILLAB_PUBLISH=" + publish,
		"MAILLAB_ADVERTISE=" + advertise,
	}
	if _, err := c.compose(ctx, "config", "-q"); err != nil {
		t.Fatalf("docker-compose.yml does not validate: %v", err)
	}
	t.Cleanup(func() {
		if !c.down {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c.stop(ctx, t)
		}
	})
	if _, err := c.compose(ctx, "up", "-d"); err != nil {
		t.Fatalf("up: %v", err)
	}
	c.waitReady(ctx, t)
	return c
}

// waitReady waits until every scenario has written its settings, and
// fails at once if a lab container stopped.
func (c *classroom) waitReady(ctx context.Context, t *testing.T) {
	t.Helper()
	for {
		missing := 0
		for _, name := range classroomScenarios {
			if _, err := os.Stat(filepath.Join(c.dir, name, "settings.json")); err != nil {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if c.exited(ctx, t) {
			logs, _ := c.compose(ctx, "logs", "--no-color")
			t.Fatalf("a classroom container exited:\n%s", logs)
		}
		select {
		case <-ctx.Done():
			logs, _ := c.compose(context.Background(), "logs", "--no-color")
			t.Fatalf("%d classroom labs wrote no settings: %v\n%s", missing, ctx.Err(), logs)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// exited reports whether a container of the project has stopped.
func (c *classroom) exited(ctx context.Context, t *testing.T) bool {
	t.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	defer cli.Close()
	filters := client.Filters{}.Add("label", "com.docker.compose.project="+c.project).Add("status", "exited", "dead")
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	return len(cs.Items) > 0
}

// stop runs down and checks that no container, network or volume of the
// project is left.
func (c *classroom) stop(ctx context.Context, t *testing.T) {
	t.Helper()
	c.down = true
	if _, err := c.compose(ctx, "down", "--timeout", "5"); err != nil {
		t.Errorf("down: %v", err)
		return
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Errorf("docker client: %v", err)
		return
	}
	defer cli.Close()
	label := client.Filters{}.Add("label", "com.docker.compose.project="+c.project)
	var left []string
	if cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: label}); err != nil {
		t.Errorf("list containers: %v", err)
	} else {
		for _, ctr := range cs.Items {
			left = append(left, "container "+strings.Join(ctr.Names, ","))
		}
	}
	if ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: label}); err != nil {
		t.Errorf("list networks: %v", err)
	} else {
		for _, n := range ns.Items {
			left = append(left, "network "+n.Name)
		}
	}
	if vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: label}); err != nil {
		t.Errorf("list volumes: %v", err)
	} else {
		for _, v := range vs.Items {
			left = append(left, "volume "+v.Name)
		}
	}
	if len(left) > 0 {
		t.Errorf("compose down left %s", strings.Join(left, "; "))
	}
}

// handout returns the settings file a trainer hands out for scenario
// name, as a trainee uses it: the CA file is the copy beside it (what
// `maillab diagnose --ca` says on the trainee's machine).
func (c *classroom) handout(t *testing.T, name string) (path string, s *settings.Settings) {
	t.Helper()
	dir := filepath.Join(c.dir, name)
	s, err := settings.Load(filepath.Join(dir, "settings.json"))
	if err != nil {
		t.Fatalf("handout %s: %v", name, err)
	}
	if want := "/lab/" + name + "/ca.pem"; s.CAFile != want {
		t.Errorf("handout %s: ca_file = %q, want %q", name, s.CAFile, want)
	}
	s.CAFile = filepath.Join(dir, "ca.pem")
	s.Resolver = reachableResolver(t, s.Resolver, c.advertise)
	path = filepath.Join(t.TempDir(), name+".json")
	if err := s.Write(path); err != nil {
		t.Fatal(err)
	}
	return path, s
}

// reachableResolver checks that the settings name the advertised
// address of the lab's DNS, not the address it bound (0.0.0.0 in the
// container), which a trainee could not reach.
func reachableResolver(t *testing.T, resolver, advertised string) string {
	t.Helper()
	host, _, err := net.SplitHostPort(resolver)
	if err != nil {
		t.Fatalf("resolver %q: %v", resolver, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		t.Errorf("settings name resolver %s, the address the lab bound; want the advertised %s", resolver, advertised)
	}
	return resolver
}

// TestComposeClassroom brings docker-compose.yml up with each compose
// implementation installed, runs the diagnoser from the host against every
// scenario's published ports with the settings file a trainer hands out,
// brings it down and checks that nothing is left.
func TestComposeClassroom(t *testing.T) {
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tools := composeTools(ctx)
	if len(tools) == 0 {
		if os.Getenv(requireDockerEnv) == "1" {
			t.Fatalf("%s=1 but neither `docker compose` nor docker-compose is installed", requireDockerEnv)
		}
		missingTool(t, "neither `docker compose` nor docker-compose is installed")
	}
	for _, tool := range tools {
		t.Run(tool.name, func(t *testing.T) {
			c := startClassroom(ctx, t, tool, "127.0.0.1", "127.0.0.1")
			for _, name := range classroomScenarios {
				t.Run(name, func(t *testing.T) {
					want := catalogCode(t, name)
					_, s := c.handout(t, name)
					rep := diagnoseSettings(ctx, t, s)
					// firewall-drop runs on the host's network (see
					// docker-compose.yml), so no proxy hides its dropped SYNs.
					if got := rep.RootCause; got != want {
						t.Errorf("Diagnose(%s) from the host = %s, want %s\nsummary: %s", name, got, want, rep.Summary)
					}
				})
			}
			c.stop(ctx, t)
		})
	}
}

// TestComposeClassroomFromAnotherHost is the classroom as a trainee on
// another machine sees it: a network namespace (the trainee's laptop)
// joined to the host by a veth pair, the classroom published on the host's
// end only (MAILLAB_PUBLISH, MAILLAB_ADVERTISE), and `maillab diagnose`
// run inside the namespace with the handed-out settings. Docker forwards
// such connections by NAT, without its userland proxy, so every scenario,
// firewall-drop too, must show its catalog code. It needs root and ip(8).
func TestComposeClassroomFromAnotherHost(t *testing.T) {
	requireDocker(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missingTool(t, "needs ip(8) (Debian package iproute2) for a network namespace")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tools := composeTools(ctx)
	if len(tools) == 0 {
		missingTool(t, "neither `docker compose` nor docker-compose is installed")
	}
	trainee := newTraineeNamespace(ctx, t)
	c := startClassroom(ctx, t, tools[0], trainee.hostIP, trainee.hostIP)
	for _, name := range classroomScenarios {
		t.Run(name, func(t *testing.T) {
			want := catalogCode(t, name)
			path, _ := c.handout(t, name)
			got := trainee.diagnose(ctx, t, path)
			if got.RootCause != want {
				t.Errorf("trainee: Diagnose(%s) = %s, want %s\nsummary: %s", name, got.RootCause, want, got.Summary)
			}
		})
	}
	c.stop(ctx, t)
}

// traineeNamespace is a network namespace with a veth link to the host.
type traineeNamespace struct {
	name   string
	hostIP string
}

// newTraineeNamespace makes the namespace on a free /24 of 10.213.0.0/16;
// the test deletes it (which deletes the veth pair).
func newTraineeNamespace(ctx context.Context, t *testing.T) traineeNamespace {
	t.Helper()
	used, err := usedPrefixes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	subnet := freeSubnet(used)
	if !subnet.IsValid() {
		t.Fatal("no free /24 in 10.213.0.0/16")
	}
	base := subnet.Addr().As4()
	hostIP := netip.AddrFrom4([4]byte{base[0], base[1], base[2], 1})
	nsIP := netip.AddrFrom4([4]byte{base[0], base[1], base[2], 2})
	id := os.Getpid() % 100000
	ns := traineeNamespace{name: fmt.Sprintf("maillab-trainee-%d", id), hostIP: hostIP.String()}
	hostIf, nsIf := fmt.Sprintf("mlh%d", id), fmt.Sprintf("mlt%d", id)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// A namespace of an earlier run that died with this process ID.
	exec.Command("ip", "netns", "del", ns.name).Run()
	run("netns", "add", ns.name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns.name, err, out)
		}
	})
	run("link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	t.Cleanup(func() {
		// Gone with the namespace unless the move below failed.
		exec.Command("ip", "link", "del", hostIf).Run()
	})
	run("link", "set", nsIf, "netns", ns.name)
	run("addr", "add", hostIP.String()+"/24", "dev", hostIf)
	run("link", "set", hostIf, "up")
	run("-n", ns.name, "addr", "add", nsIP.String()+"/24", "dev", nsIf)
	run("-n", ns.name, "link", "set", nsIf, "up")
	run("-n", ns.name, "link", "set", "lo", "up")
	run("-n", ns.name, "route", "add", "default", "via", hostIP.String())
	return ns
}

// diagnose runs the maillab binary inside the namespace.
func (ns traineeNamespace) diagnose(ctx context.Context, t *testing.T, settingsFile string) clientReport {
	t.Helper()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.name, hostBinary, "diagnose", "--settings", settingsFile, "--json", "--timeout", probeTimeout.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !(errors.As(err, &exitErr) && exitErr.ExitCode() == 1) {
		t.Fatalf("maillab diagnose in %s: %v\n%s", ns.name, err, stderr.Bytes())
	}
	var rep clientReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	if (rep.RootCause == rootcause.Healthy) != (err == nil) {
		t.Errorf("maillab diagnose exit status does not match root cause %s: %v", rep.RootCause, err)
	}
	return rep
}
