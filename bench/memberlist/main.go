// The reference side of bench/gossip-vs-memberlist: N hashicorp/memberlist
// members (DefaultLANConfig) over real UDP/TCP on 127.0.0.1 in one process.
// Prints one JSON line with the same fields as the TypeScript side: bytes and
// datagrams sent per node per second while idle, then one member shuts down
// without leaving, the time until every other member has it dead, and the
// bytes per node per second of that window. Bytes are counted by a transport
// wrapper: UDP payloads and TCP push/pull streams, both directions' writes.
//
// Built by the bench with Debian's golang-go and
// golang-github-hashicorp-memberlist-dev (GOPATH mode, offline).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// counting wraps the NetTransport: every byte memberlist writes goes through here.
type counting struct {
	*memberlist.NetTransport
	bytes   int64
	packets int64
	streams chan net.Conn
}

type countConn struct {
	net.Conn
	c *counting
}

func (c countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	atomic.AddInt64(&c.c.bytes, int64(n))
	return n, err
}

func (t *counting) count(b []byte) {
	atomic.AddInt64(&t.bytes, int64(len(b)))
	atomic.AddInt64(&t.packets, 1)
}

func (t *counting) WriteTo(b []byte, addr string) (time.Time, error) {
	t.count(b)
	return t.NetTransport.WriteTo(b, addr)
}

func (t *counting) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.count(b)
	return t.NetTransport.WriteToAddress(b, a)
}

func (t *counting) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return countConn{c, t}, nil
}

func (t *counting) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return countConn{c, t}, nil
}

func (t *counting) StreamCh() <-chan net.Conn { return t.streams }

type meta struct {
	mu sync.Mutex
	b  []byte
}

func (m *meta) NodeMeta(limit int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b
}
func (m *meta) NotifyMsg([]byte)                           {}
func (m *meta) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (m *meta) LocalState(join bool) []byte                { return nil }
func (m *meta) MergeRemoteState(buf []byte, join bool)     {}

// liveFacts is the shape of what a piswarm agent publishes every 5 s (the
// cluster view's facts): the same JSON the TypeScript side publishes.
func liveFacts(name string, seq int) []byte {
	b, _ := json.Marshal(map[string]interface{}{
		"hostname": name, "role": "worker", "swarmNodeId": "k3v9q2m1x8c7b6n5z4a0s1d2f", "diskBps": 41943040, "tempC": 40 + float64(seq%50)/10,
		"x": []interface{}{seq, "0.5.0", "pass", []string{}, seq % 97, 30 + seq%11, float64(seq%300) / 100, false, 71, 3600 + 5*seq, "arm64", "Raspberry Pi 4 Model B Rev 1.4", "d03114s", 7809},
	})
	return b
}

type result struct {
	Name               string   `json:"name"`
	N                  int      `json:"n"`
	IdleBytesPerNodeS  float64  `json:"idleBytesPerNodeS"`
	IdleMsgsPerNodeS   float64  `json:"idleMsgsPerNodeS"`
	CrashSeenByAllMs   *float64 `json:"crashSeenByAllMs"`
	CrashBytesPerNodeS float64  `json:"crashBytesPerNodeS"`
}

type node struct {
	m    *memberlist.Memberlist
	t    *counting
	meta *meta
	name string
}

func start(i int, key []byte) (*node, error) {
	name := fmt.Sprintf("pi-%02d", i+1)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		return nil, err
	}
	t := &counting{NetTransport: nt, streams: make(chan net.Conn)}
	go func() {
		for c := range nt.StreamCh() {
			t.streams <- countConn{c, t}
		}
	}()
	cfg := memberlist.DefaultLANConfig()
	cfg.Name = name
	cfg.Transport = t
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = nt.GetAutoBindPort()
	cfg.AdvertiseAddr = "127.0.0.1"
	cfg.AdvertisePort = cfg.BindPort
	cfg.LogOutput = io.Discard
	cfg.SecretKey = key
	b, _ := json.Marshal(map[string]string{"hostname": name, "role": "worker"})
	md := &meta{b: b}
	cfg.Delegate = md
	m, err := memberlist.Create(cfg)
	if err != nil {
		return nil, err
	}
	return &node{m, t, md, name}, nil
}

func sent(ns []*node) (int64, int64) {
	var b, p int64
	for _, n := range ns {
		b += atomic.LoadInt64(&n.t.bytes)
		p += atomic.LoadInt64(&n.t.packets)
	}
	return b, p
}

func main() {
	n := flag.Int("n", 20, "members")
	settle := flag.Duration("settle", 20*time.Second, "wait after joining")
	idle := flag.Duration("idle", 30*time.Second, "idle window")
	crashWait := flag.Duration("crash-wait", 60*time.Second, "longest wait for the crash to be seen")
	encrypt := flag.Bool("encrypt", false, "SecretKey (AES-GCM), as every piswarm datagram is authenticated")
	metaEvery := flag.Duration("meta-every", 0, "each member publishes new live facts this often (0: static metadata)")
	flag.Parse()
	var key []byte
	name := "memberlist 0.2.2 (plain)"
	if *encrypt {
		key = []byte("0123456789abcdef0123456789abcdef")
		name = "memberlist 0.2.2 (AES-256-GCM)"
	}
	ns := make([]*node, 0, *n)
	for i := 0; i < *n; i++ {
		nd, err := start(i, key)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ns = append(ns, nd)
	}
	seed := fmt.Sprintf("127.0.0.1:%d", ns[0].m.LocalNode().Port)
	for _, nd := range ns[1:] {
		if _, err := nd.m.Join([]string{seed}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if *metaEvery > 0 {
		name += fmt.Sprintf(", facts every %s", *metaEvery)
		for i, nd := range ns {
			go func(i int, nd *node) {
				time.Sleep(time.Duration(i) * *metaEvery / time.Duration(len(ns)))
				for seq := 1; ; seq++ {
					nd.meta.mu.Lock()
					nd.meta.b = liveFacts(nd.name, seq)
					nd.meta.mu.Unlock()
					if nd.m.UpdateNode(time.Second) != nil {
						return // shut down
					}
					time.Sleep(*metaEvery)
				}
			}(i, nd)
		}
	}
	time.Sleep(*settle)
	for _, nd := range ns {
		if nd.m.NumMembers() != *n {
			fmt.Fprintf(os.Stderr, "after %s a member sees %d of %d\n", *settle, nd.m.NumMembers(), *n)
			os.Exit(1)
		}
	}
	b0, p0 := sent(ns)
	t0 := time.Now()
	time.Sleep(*idle)
	b1, p1 := sent(ns)
	idleS := time.Since(t0).Seconds()

	victim := ns[len(ns)-1]
	victimName := victim.m.LocalNode().Name
	rest := ns[:len(ns)-1]
	cb0, _ := sent(rest)
	tc := time.Now()
	victim.m.Shutdown() // no Leave: a crash
	var seen *float64
	for time.Since(tc) < *crashWait {
		all := true
		for _, nd := range rest {
			for _, m := range nd.m.Members() { // alive and suspect members only
				if m.Name == victimName {
					all = false
				}
			}
		}
		if all {
			ms := float64(time.Since(tc).Microseconds()) / 1000
			seen = &ms
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	crashS := time.Since(tc).Seconds()
	cb1, _ := sent(rest)
	var wg sync.WaitGroup
	for _, nd := range rest {
		wg.Add(1)
		go func(nd *node) { defer wg.Done(); nd.m.Shutdown() }(nd)
	}
	wg.Wait()
	out, _ := json.Marshal(result{name, *n, float64(b1-b0) / float64(*n) / idleS, float64(p1-p0) / float64(*n) / idleS, seen, float64(cb1-cb0) / float64(len(rest)) / crashS})
	fmt.Println(string(out))
}
