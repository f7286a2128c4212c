package egress

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func TestCheckURL(t *testing.T) {
	for _, c := range []struct {
		raw          string
		allowPrivate bool
		ok           bool
	}{
		{"https://accounts.google.com", false, true},
		{"https://gw.example/sms", false, true},
		{"https://10.0.0.1/x", false, false},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"https://[::ffff:169.254.169.254]/", false, false},
		{"https://100.64.0.1/", false, false},
		{"https://[fd00::1]/", false, false},
		{"https://localhost/x", false, false},
		{"https://127.0.0.1:8443/jwks", false, false},
		{"https://127.0.0.1:8443/jwks", true, true},
		{"http://127.0.0.1:8080/jwks", false, false},
		{"http://127.0.0.1:8080/jwks", true, true},
		{"http://localhost/x", true, true},
		{"http://[::1]:9/x", true, true},
		{"http://10.0.0.1/x", true, true},
		{"http://relay.internal/x", true, true}, // a name: judged at dial time
		{"http://gw.example/sms", false, false},
		{"http://8.8.8.8/x", true, false},
		{"ftp://gw.example", true, false},
		{"gw.example/sms", false, false},
		{"", false, false},
		{"https://", false, false},
		// Addresses in other spellings, whatever allowPrivateNetwork says:
		// they end in a number, which no public name does.
		{"https://127.1/x", false, false},
		{"https://127.1/x", true, false},
		{"https://2130706433/x", false, false},
		{"https://0x7f000001/x", false, false},
		{"https://0X7F000001/x", true, false},
		{"https://0177.0.0.1/x", false, false},
		{"https://10.1/x", false, false},
		{"https://169.254.169.254./latest/meta-data", false, false},
		{"http://127.1:8080/x", true, false},
		{"https://shop.0x1f/x", false, false},
		{"https://8.8.8.8/x", false, true}, // an address as written is judged as one
		{"https://1password.example/x", false, true},
		{"https://a1.example.com./x", false, true},
		{"https://api.0xff.example/x", false, true},
	} {
		if err := CheckURL(c.raw, c.allowPrivate); (err == nil) != c.ok {
			t.Errorf("CheckURL(%q, allowPrivate=%v) = %v, want ok=%v", c.raw, c.allowPrivate, err, c.ok)
		}
	}
	t.Run("a host that ends in a number is refused as an address in another spelling", func(t *testing.T) {
		for _, host := range []string{"127.1", "2130706433", "169.254.169.254."} {
			if err := CheckHost(host, false); err == nil || !strings.Contains(err.Error(), "a.b.c.d") {
				t.Errorf("CheckHost(%q) = %v, want it refused as an address", host, err)
			}
		}
	})
	// Found by an audit: the message quoted u.Redacted(), which hides a
	// password only, so a token as the user name, in the query or in the
	// fragment went to config check, start-up's stderr and the admin API's
	// 422 answers.
	t.Run("a refused URL is named by scheme, host and path, without its credential", func(t *testing.T) {
		for _, raw := range []string{
			"https://tok-123@crm.example/h",
			"https://crm-user:tok-123@crm.example/h",
			"http://crm.example/h?key=tok-123",
			"http://crm.example/h#tok-123",
			"http://tok-123@crm.example/h?key=tok-123",
			"ftp://crm.example/h?key=tok-123",
		} {
			err := CheckURL(raw, false)
			if err == nil || strings.Contains(err.Error(), "tok-123") || !strings.Contains(err.Error(), "crm.example/h") {
				t.Errorf("CheckURL(%q) = %v, want it refused naming crm.example/h only", raw, err)
			}
		}
		// The client's own refusal, which a caller may log without the url.Error around it.
		req, err := http.NewRequest(http.MethodGet, "http://crm.example/h?key=tok-123#tok-123", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewClient(Options{}).Transport.RoundTrip(req)
		if !errors.Is(err, ErrRefused) || strings.Contains(err.Error(), "tok-123") || !strings.Contains(err.Error(), "crm.example/h") {
			t.Errorf("plain http refused by the client: %v", err)
		}
	})
	t.Run("the refusal names the setting", func(t *testing.T) {
		for _, raw := range []string{"http://169.254.169.254/", "https://169.254.169.254/", "http://crm.example/"} {
			if err := CheckURL(raw, false); err == nil || !strings.Contains(err.Error(), "allowPrivateNetwork: true") {
				t.Errorf("CheckURL(%q) = %v, want the setting named", raw, err)
			}
		}
	})
}

func TestClassify(t *testing.T) {
	for s, want := range map[string]class{
		"8.8.8.8":                public,
		"2001:4860:4860::8888":   public,
		"127.0.0.1":              internal,
		"127.1.2.3":              internal,
		"10.1.2.3":               internal,
		"172.16.0.1":             internal,
		"172.31.255.255":         internal,
		"172.32.0.1":             public,
		"192.168.1.1":            internal,
		"169.254.169.254":        internal,
		"100.64.0.1":             internal,
		"100.127.255.255":        internal,
		"100.128.0.1":            public,
		"::1":                    internal,
		"fc00::1":                internal,
		"fd12:3456::1":           internal,
		"fe80::1":                internal,
		"fec0::1":                internal, // site-local, deprecated but still routed inside some networks
		"feff:ffff::1":           internal,
		"ff00::1":                never,
		"::ffff:127.0.0.1":       internal,
		"::ffff:169.254.169.254": internal,
		"64:ff9b::a9fe:a9fe":     internal, // 169.254.169.254 through NAT64
		"64:ff9b::808:808":       public,
		"0.0.0.0":                never,
		"::":                     never,
		"::ffff:0.0.0.0":         never,
		"255.255.255.255":        never,
		"224.0.0.1":              never,
		"ff02::1":                never,
		"::7f00:1":               never, // IPv4-compatible 127.0.0.1
		"198.18.0.1":             internal,
		"198.19.255.255":         internal,
		"198.20.0.1":             public,
		"64:ff9b:1::a00:1":       internal, // a local NAT64 translator
		"2002:7f00:1::1":         internal, // 127.0.0.1 in 6to4
		"2002:a9fe:a9fe::1":      internal, // 169.254.169.254 in 6to4
		"2002:808:808::1":        public,
		"192.0.0.8":              never,
		"192.88.99.1":            never,
		"2001:0:4136:e378::1":    never, // Teredo
	} {
		if got := classify(netip.MustParseAddr(s).Unmap()); got != want {
			t.Errorf("classify(%s) = %d, want %d", s, got, want)
		}
	}
}

func TestPlainHTTPGoesToPrivateNetworksOnly(t *testing.T) {
	o := Options{AllowPrivateNetwork: true}
	if err := o.allows("127.0.0.1:80", true); err != nil {
		t.Errorf("plain http to loopback with the setting: %v", err)
	}
	if err := o.allows("203.0.113.7:80", true); !errors.Is(err, ErrRefused) {
		t.Errorf("plain http to a public address: %v", err)
	}
	if err := o.allows("203.0.113.7:443", false); err != nil {
		t.Errorf("https to a public address: %v", err)
	}
	if err := (Options{}).allows("203.0.113.7:443", false); err != nil {
		t.Errorf("https to a public address without the setting: %v", err)
	}
	res, err := NewClient(Options{}).Get("http://127.0.0.1:1/")
	if err == nil {
		res.Body.Close()
	}
	if !errors.Is(err, ErrRefused) {
		t.Errorf("plain http without the setting: %v", err)
	}
}

// dnsServer is a local DNS server answering A and AAAA questions from
// names; every other name does not exist.
type dnsServer struct {
	pc      net.PacketConn
	names   map[string]netip.Addr
	queries atomic.Int32
}

func startDNS(t *testing.T, names map[string]netip.Addr) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc, names: names}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if answer, err := s.answer(buf[:n]); err == nil {
				_, _ = pc.WriteTo(answer, from)
			}
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); wg.Wait() })
	return s
}

func (s *dnsServer) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	s.queries.Add(1)
	ip, known := s.names[strings.TrimSuffix(q.Name.String(), ".")]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	switch {
	case known && q.Type == dnsmessage.TypeA && ip.Is4():
		err = b.AResource(rr, dnsmessage.AResource{A: ip.As4()})
	case known && q.Type == dnsmessage.TypeAAAA && ip.Is6():
		err = b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: ip.As16()})
	}
	if err != nil {
		return nil, err
	}
	return b.Finish()
}

// resolver asks s only.
func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.pc.LocalAddr().String())
	}}
}

func TestTheDialRefusesWhatANameResolvesTo(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "reached")
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	dns := startDNS(t, map[string]netip.Addr{
		"loop.test":     netip.MustParseAddr("127.0.0.1"),
		"metadata.test": netip.MustParseAddr("169.254.169.254"),
		"office.test":   netip.MustParseAddr("10.0.0.1"),
		"mapped.test":   netip.MustParseAddr("::ffff:127.0.0.1"),
		"public.test":   netip.MustParseAddr("203.0.113.7"),
	})
	get := func(c *http.Client, url string) error {
		res, err := c.Get(url)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if string(body) != "reached" {
			t.Fatalf("%s answered %q", url, body)
		}
		return nil
	}

	t.Run("with the setting, a name resolving to loopback is reached", func(t *testing.T) {
		allowed := NewClient(Options{AllowPrivateNetwork: true, Resolver: dns.resolver()})
		if err := get(allowed, "http://loop.test:"+strconv.Itoa(port)+"/"); err != nil {
			t.Fatalf("allowed: %v", err)
		}
		if hits.Load() != 1 || dns.queries.Load() == 0 {
			t.Fatalf("hits %d, DNS queries %d", hits.Load(), dns.queries.Load())
		}
	})

	strict := NewClient(Options{Resolver: dns.resolver()})
	// Loopback first: were the check broken, this fails here, before any
	// attempt to reach the other addresses.
	for _, c := range []struct{ name, ip string }{
		{"loop.test", "127.0.0.1"},
		{"mapped.test", "127.0.0.1"},
		{"metadata.test", "169.254.169.254"},
		{"office.test", "10.0.0.1"},
	} {
		t.Run("without the setting, "+c.name+" resolving to "+c.ip+" is refused at dial time", func(t *testing.T) {
			before := dns.queries.Load()
			err := get(strict, "https://"+c.name+":"+strconv.Itoa(port)+"/")
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.ip) {
				t.Fatalf("got %v, want a refusal naming the resolved address %s", err, c.ip)
			}
			if dns.queries.Load() == before {
				t.Fatal("refused without resolving the name")
			}
		})
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("the server was reached %d times, want once (with the setting)", n)
	}

	t.Run("SMTP's dialer applies the same rule", func(t *testing.T) {
		conn, err := Options{Resolver: dns.resolver()}.DialContext(context.Background(), "tcp", "loop.test:"+strconv.Itoa(port))
		if err == nil {
			conn.Close()
		}
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("dial: %v", err)
		}
		conn, err = Options{AllowPrivateNetwork: true, Resolver: dns.resolver()}.DialContext(context.Background(), "tcp", "loop.test:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("dial with the setting: %v", err)
		}
		conn.Close()
	})

	t.Run("SMTP without TLS goes to a private network only, as plain http", func(t *testing.T) {
		dial := func(o Options, host string) error {
			o.Resolver = dns.resolver()
			conn, err := o.DialPlainContext(context.Background(), "tcp", host+":"+strconv.Itoa(port))
			if err == nil {
				conn.Close()
			}
			return err
		}
		if err := dial(Options{AllowPrivateNetwork: true}, "loop.test"); err != nil {
			t.Fatalf("a local relay that says so: %v", err)
		}
		if err := dial(Options{}, "loop.test"); !errors.Is(err, ErrRefused) {
			t.Fatalf("a local relay that does not say so: %v", err)
		}
		// Refused before connecting: 203.0.113.7 is never reached.
		if err := dial(Options{AllowPrivateNetwork: true}, "public.test"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "203.0.113.7") {
			t.Fatalf("a name resolving to a public address: %v", err)
		}
	})
}

func TestARedirectIsAnAnswerNotAHop(t *testing.T) {
	var followed atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Add(1) }))
	t.Cleanup(target.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/collect", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)
	c := NewClient(Options{AllowPrivateNetwork: true})
	res, err := c.Post(redirect.URL+"/?access_token=app|secret", "text/plain", strings.NewReader("code=123456"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect || followed.Load() != 0 {
		t.Fatalf("status %d, target reached %d times; want the 307 itself and no hop", res.StatusCode, followed.Load())
	}
}

func TestProxiesFromTheEnvironmentAreIgnored(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		proxied.Add(1)
		_, _ = io.WriteString(w, "reached") // a proxy would answer for the target
	}))
	t.Cleanup(proxy.Close)
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		t.Setenv(k, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	dns := startDNS(t, map[string]netip.Addr{"metadata.test": netip.MustParseAddr("169.254.169.254")})
	// A name, not localhost: the standard library never proxies localhost.
	res, err := NewClient(Options{Resolver: dns.resolver()}).Get("https://metadata.test/latest/meta-data")
	if err == nil {
		res.Body.Close()
	}
	// The refusal names the target's address, not the proxy's: the dial was ours.
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "169.254.169.254") || proxied.Load() != 0 {
		t.Fatalf("err %v, proxied %d times; want a refusal of the target at our own dial", err, proxied.Load())
	}
}
