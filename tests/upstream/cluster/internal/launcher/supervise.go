package launcher

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// supervisor runs the components as child processes. Any child that ends ends the launcher
// (with an error: systemd's Restart=always starts everything again), as a component that
// fails inside K3s ends K3s. Stopping the launcher stops the children but not the
// containerd shims, which detach themselves: pods keep running over a restart, as with K3s.
type supervisor struct {
	logDir string
	mu     sync.Mutex
	procs  []*proc
	exited chan *proc
	stop   bool
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	err  error
	done chan struct{} // closed when the process has ended
}

func newSupervisor(logDir string) *supervisor {
	os.MkdirAll(logDir, 0o700)
	return &supervisor{logDir: logDir, exited: make(chan *proc, 16)}
}

// start runs bin/<name> args..., its output in <logDir>/<name>.log.
func (s *supervisor) start(name, path string, args []string, env []string) error {
	logPath := filepath.Join(s.logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "\n==== %s %s: %s %s\n", time.Now().UTC().Format(time.RFC3339), Name, path, strings.Join(redact(args), " "))
	cmd := exec.Command(path, args...)
	cmd.Args[0] = name
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	logf("started %s (pid %d), log %s", name, cmd.Process.Pid, logPath)
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
		s.exited <- p
	}()
	return nil
}

// redact hides flag values that could carry a secret from the log header. No secret is
// ever passed as an argument (tokens travel in files); this is a second line.
func redact(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.Contains(strings.ToLower(a), "token=") {
			a = a[:strings.Index(a, "=")+1] + "***"
		}
		out[i] = a
	}
	return out
}

// wait blocks until a signal or a child's end; it then stops the others.
func (s *supervisor) wait() int {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	rc := 0
	select {
	case got := <-sig:
		logf("%s: stopping", got)
	case p := <-s.exited:
		logf("%s ended (%v); last lines of %s:\n%s", p.name, p.err, p.log, tail(p.log, 25))
		rc = 1
	}
	s.shutdown()
	return rc
}

func (s *supervisor) shutdown() {
	s.mu.Lock()
	s.stop = true
	procs := append([]*proc(nil), s.procs...)
	s.mu.Unlock()
	// In reverse order of start: the kubelet before containerd, the apiserver before etcd.
	deadline := time.After(20 * time.Second)
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-deadline:
			for _, q := range procs {
				q.cmd.Process.Kill()
			}
			return
		}
	}
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1024*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// sdNotify tells systemd (Type=notify) that the service is ready; a no-op without systemd.
func sdNotify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		logf("sd_notify: %v", err)
		return
	}
	defer conn.Close()
	conn.Write([]byte(state))
}
