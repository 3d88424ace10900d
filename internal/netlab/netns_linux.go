package netlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"unsafe"
)

// envInside marks a process that Reexec started in its namespaces.
const envInside = "MTASTS_NETLAB_INSIDE"

// Inside reports whether this process runs in the private namespaces that
// Reexec made.
func Inside() bool {
	return os.Getenv(envInside) == "1"
}

// Command returns the command that runs name with args in a new network
// and mount namespace, marked so that Inside reports true there. Mounts
// made inside stay inside (the root mount is made private first). It needs
// root (CAP_SYS_ADMIN); Run then fails with a permission error otherwise.
func Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), envInside+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// With CLONE_NEWNS in Unshareflags, Go makes "/" a private
		// mount before running the program, so that bind mounts made
		// in the namespace are not seen outside it.
		Unshareflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS,
		// If the parent dies, the child and its namespace go too.
		Pdeathsig: syscall.SIGKILL,
	}
	return cmd
}

// Setup prepares the namespace: it brings the loopback interface up and
// bind-mounts, over /etc/resolv.conf, a file in dir naming 127.0.0.1 as
// the only name server, so that programs using the system's resolver ask
// the server forwarded to 127.0.0.1:53. It returns ErrNotIsolated outside
// a namespace made by Command.
func Setup(dir string) error {
	if !Inside() {
		return ErrNotIsolated
	}
	if err := loopbackUp(); err != nil {
		return fmt.Errorf("netlab: bringing lo up: %w", err)
	}
	// The namespace's own settings: every port for outgoing
	// connections, for benchmarks that make many.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("1024 65535\n"), 0o644); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	conf := filepath.Join(dir, "resolv.conf")
	// One try, a short timeout: a lab server that fails should fail fast.
	if err := os.WriteFile(conf, []byte("nameserver 127.0.0.1\noptions timeout:2 attempts:2\n"), 0o644); err != nil {
		return err
	}
	if err := syscall.Mount(conf, "/etc/resolv.conf", "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("netlab: bind-mounting %s over /etc/resolv.conf: %w", conf, err)
	}
	return nil
}

// loopbackUp sets the IFF_UP flag of "lo", as "ip link set lo up" does: a
// new network namespace has its loopback interface down.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	// struct ifreq: the name, then a union of which ifr_flags is a short.
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(ifr.name[:], "lo")
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	ifr.flags |= syscall.IFF_UP
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	return nil
}
