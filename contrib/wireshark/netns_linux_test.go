package wireshark

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A capture of real traffic in a network namespace of the test's own: its
// loopback carries only what the test starts there, so nothing of the
// other tests that run in parallel on the host's loopback, and has the MTU
// the test sets. dumpcap (Wireshark's capture program, which tshark runs
// too) captures it; that needs root (CAP_NET_RAW), as making the namespace
// does (CAP_SYS_ADMIN).

// netns is a network namespace entered by one goroutine locked to its OS
// thread (unshare(CLONE_NEWNET) changes only the calling thread), which
// runs the functions given to do: processes started and sockets made
// there belong to the namespace. Nothing names the namespace, so nothing
// of it outlives the test: the kernel frees it when the thread (which ends
// with close), the processes and the sockets are gone, and the processes
// get SIGKILL if the thread ends first (Pdeathsig), so none is left behind
// if the test dies.
type netns struct {
	work chan func()
	quit chan struct{}
	once sync.Once
}

// newNetns makes a namespace whose loopback is up with the given MTU.
func newNetns(mtu int) (*netns, error) {
	ns := &netns{work: make(chan func()), quit: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, in the namespace, exits with this
		// goroutine instead of going back to the scheduler.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		if err := loopbackUp(mtu); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for {
			select {
			case f := <-ns.work:
				f()
			case <-ns.quit:
				return
			}
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return ns, nil
}

// do runs f in the namespace and waits for it.
func (ns *netns) do(f func()) {
	done := make(chan struct{})
	ns.work <- func() {
		defer close(done)
		f()
	}
	<-done
}

// start starts cmd in the namespace; it is killed if the namespace's
// thread ends first.
func (ns *netns) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	var err error
	ns.do(func() { err = cmd.Start() })
	return err
}

// close ends the namespace's thread.
func (ns *netns) close() { ns.once.Do(func() { close(ns.quit) }) }

// loopbackUp sets the calling thread's namespace's loopback up with MTU
// mtu (the ioctls of ip link set lo up mtu N).
func loopbackUp(mtu int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint32(uint32(mtu))
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr); err != nil {
		return fmt.Errorf("lo: setting the MTU: %w", err)
	}
	if ifr, err = unix.NewIfreq("lo"); err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo: setting it up: %w", err)
	}
	if ifr, err = unix.NewIfreq("lo"); err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFMTU, ifr); err != nil {
		return err
	}
	if got := int(ifr.Uint32()); got != mtu {
		return fmt.Errorf("lo: MTU %d after setting %d", got, mtu)
	}
	return nil
}

// pcapFrame is one frame of a classic pcap file.
type pcapFrame struct {
	sec, usec uint32
	data      []byte
}

// liveCapture is dumpcap capturing UDP and TCP on the namespace's
// loopback, writing a classic pcap stream to a pipe that the test reads
// as it comes (dumpcap flushes each packet into a pipe).
type liveCapture struct {
	cmd      *exec.Cmd
	stderr   bytes.Buffer // dumpcap's; read after Wait
	marker   *net.UDPConn // in the namespace: sends the markers
	done     chan struct{}
	mu       sync.Mutex
	linktype uint32
	frames   []pcapFrame
	err      error // reading the stream
}

// startCapture starts dumpcap in ns and returns once it is capturing: once
// a marker datagram sent on the loopback has come out of the pipe.
func startCapture(ns *netns, dumpcap string) (*liveCapture, error) {
	c := &liveCapture{done: make(chan struct{})}
	var err error
	ns.do(func() {
		c.marker, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	})
	if err != nil {
		return nil, err
	}
	// -P: classic pcap; -B: a 64 MiB kernel buffer, so that none is dropped.
	c.cmd = exec.Command(dumpcap, "-i", "lo", "-f", "udp or tcp", "-P", "-B", "64", "-w", "-")
	c.cmd.Stderr = &c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		c.marker.Close()
		return nil, err
	}
	if err := ns.start(c.cmd); err != nil {
		c.marker.Close()
		return nil, fmt.Errorf("dumpcap: %w", err)
	}
	go c.read(out)
	if err := c.sync("start", 15*time.Second); err != nil {
		c.stop()
		return nil, fmt.Errorf("%w; dumpcap: %s", err, c.stderr.String())
	}
	return c, nil
}

// read parses the pcap stream until it ends.
func (c *liveCapture) read(r io.Reader) {
	defer close(c.done)
	fail := func(err error) {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		io.Copy(io.Discard, r)
	}
	var gh [24]byte
	if _, err := io.ReadFull(r, gh[:]); err != nil {
		fail(fmt.Errorf("pcap header: %w", err))
		return
	}
	if binary.LittleEndian.Uint32(gh[0:]) != 0xa1b2c3d4 {
		fail(fmt.Errorf("not a little-endian microsecond pcap stream: % x", gh[:4]))
		return
	}
	c.mu.Lock()
	c.linktype = binary.LittleEndian.Uint32(gh[20:])
	c.mu.Unlock()
	for i := 0; ; i++ { // until dumpcap ends the stream
		var ph [16]byte
		if _, err := io.ReadFull(r, ph[:]); err != nil {
			if err != io.EOF {
				fail(fmt.Errorf("frame %d: %w", i+1, err))
			}
			return
		}
		incl, orig := binary.LittleEndian.Uint32(ph[8:]), binary.LittleEndian.Uint32(ph[12:])
		if incl != orig || incl > 1<<20 {
			fail(fmt.Errorf("frame %d: %d bytes captured of %d", i+1, incl, orig))
			return
		}
		f := pcapFrame{sec: binary.LittleEndian.Uint32(ph[0:]), usec: binary.LittleEndian.Uint32(ph[4:]), data: make([]byte, incl)}
		if _, err := io.ReadFull(r, f.data); err != nil {
			fail(fmt.Errorf("frame %d: %w", i+1, err))
			return
		}
		c.mu.Lock()
		c.frames = append(c.frames, f)
		c.mu.Unlock()
	}
}

// markerText is the payload of the marker datagrams of one capture.
func (c *liveCapture) markerText(label string) []byte {
	return []byte(fmt.Sprintf("haven test capture marker %s %d", label, c.marker.LocalAddr().(*net.UDPAddr).Port))
}

// sync sends a marker datagram to the namespace's discard port every 20
// ms until one has come out of dumpcap's pipe. Packets sent on the
// loopback before the first marker are then captured too: the loopback
// hands each packet to the capture as it is sent, in order.
func (c *liveCapture) sync(label string, timeout time.Duration) error {
	text := c.markerText(label)
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	end := time.Now().Add(timeout)
	for i := 0; time.Now().Before(end); i++ {
		if i%4 == 0 {
			if _, err := c.marker.WriteToUDP(text, to); err != nil {
				return err
			}
		}
		c.mu.Lock()
		seen, err := false, c.err
		for j := len(c.frames) - 1; j >= 0 && !seen; j-- {
			seen = bytes.Contains(c.frames[j].data, text)
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
		if seen {
			return nil
		}
		select {
		case <-c.done:
			return errors.New("dumpcap ended")
		case <-time.After(5 * time.Millisecond):
		}
	}
	return fmt.Errorf("the %s marker did not come out of dumpcap within %v", label, timeout)
}

var dumpcapStats = regexp.MustCompile(`received/dropped on interface '[^']*': (\d+)/(\d+)`)

// finish waits until everything sent so far has been captured (a last
// marker), stops dumpcap and returns the frames, but the markers'. It
// fails if dumpcap or the kernel dropped any packet.
func (c *liveCapture) finish() (linktype uint32, frames []pcapFrame, err error) {
	if err := c.sync("end", 15*time.Second); err != nil {
		c.stop()
		return 0, nil, err
	}
	if err := c.stop(); err != nil {
		return 0, nil, err
	}
	m := dumpcapStats.FindStringSubmatch(c.stderr.String())
	if m == nil {
		return 0, nil, fmt.Errorf("dumpcap printed no packet counts: %s", c.stderr.String())
	}
	if m[2] != "0" {
		return 0, nil, fmt.Errorf("dumpcap: %s packets dropped: %s", m[2], c.stderr.String())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, nil, c.err
	}
	if n, _ := strconv.Atoi(m[1]); n != len(c.frames) {
		return 0, nil, fmt.Errorf("dumpcap received %d packets, %d came out of the pipe", n, len(c.frames))
	}
	start, end := c.markerText("start"), c.markerText("end")
	for _, f := range c.frames {
		if !bytes.Contains(f.data, start) && !bytes.Contains(f.data, end) {
			frames = append(frames, f)
		}
	}
	return c.linktype, frames, nil
}

// stop stops dumpcap (SIGTERM: it writes what it holds and its counts)
// and waits for it, 10 seconds at most before killing it.
func (c *liveCapture) stop() error {
	defer c.marker.Close()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() && ee.ExitCode() == 0 {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("dumpcap: %v: %s", err, c.stderr.String())
	}
	return nil
}

// writePcapFrames writes frames as a classic pcap file.
func writePcapFrames(name string, linktype uint32, frames []pcapFrame) error {
	var b bytes.Buffer
	var gh [24]byte
	binary.LittleEndian.PutUint32(gh[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(gh[4:], 2)
	binary.LittleEndian.PutUint16(gh[6:], 4)
	binary.LittleEndian.PutUint32(gh[16:], 1<<20)
	binary.LittleEndian.PutUint32(gh[20:], linktype)
	b.Write(gh[:])
	for _, f := range frames {
		var ph [16]byte
		binary.LittleEndian.PutUint32(ph[0:], f.sec)
		binary.LittleEndian.PutUint32(ph[4:], f.usec)
		binary.LittleEndian.PutUint32(ph[8:], uint32(len(f.data)))
		binary.LittleEndian.PutUint32(ph[12:], uint32(len(f.data)))
		b.Write(ph[:])
		b.Write(f.data)
	}
	return os.WriteFile(name, b.Bytes(), 0o600)
}
