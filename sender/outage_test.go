package sender

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customerd/customerd/sender/smtptest"
)

// A withheld code (a token holder's contact change to another account's
// address, under checkInPolicy partial or full) answers as a real send to
// a free address would. During an outage of the tenant's relay a free
// address's code fails (503) while a withheld one was "sent" (202): who has
// an account, told to any token holder for as long as the outage lasted.
// These tests drive one guarded sender through a real relay or gateway and
// ask, after each real send, what a withheld code does.

// outage is a guarded sender on a clock the test moves.
type outage struct {
	t     *testing.T
	g     *guarded
	clock time.Time
}

func newOutage(t *testing.T, c Config) *outage {
	t.Helper()
	s, err := Builtin().Open(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	o := &outage{t: t, g: Config{}.Guard(s, nil).(*guarded), clock: time.Now()}
	o.g.now = func() time.Time { return o.clock }
	return o
}

// send is a real send's error.
func (o *outage) send(m Message) error { return o.g.Send(context.Background(), m) }

// withheld is what a withheld code to m.To answers, its wait cut short
// (what it answers is the point, not how long it takes).
func (o *outage) withheld(m Message) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return Withheld(o.g).Send(ctx, m)
}

// mustSend fails the test unless a real send to m.To succeeds (ok) or
// fails (!ok).
func (o *outage) mustSend(what string, m Message, ok bool) {
	o.t.Helper()
	if err := o.send(m); (err == nil) != ok {
		o.t.Fatalf("%s: a real send to %s: %v", what, m.To, err)
	}
}

// mustWithhold fails the test unless a withheld code succeeds (ok) or
// fails (!ok), as the real send before it would have for a free address.
func (o *outage) mustWithhold(what string, m Message, ok bool) {
	o.t.Helper()
	if err := o.withheld(m); (err == nil) != ok {
		o.t.Errorf("%s: a withheld code answers %v, want success %v", what, err, ok)
	}
}

func emailTo(to string) Message {
	return Message{Tenant: "acme", Channel: Email, To: to, Code: "402913", ExpiresAt: time.Now().Add(10 * time.Minute)}
}

func smsTo(to string) Message {
	return Message{Tenant: "acme", Channel: SMS, To: to, Code: "402913", ExpiresAt: time.Now().Add(10 * time.Minute)}
}

func smtpTo(port int, rootCAs string) Config {
	return Config{Type: typeSMTP, SMTP: &SMTPConfig{Host: "127.0.0.1", Port: port, TLS: tlsStartTLS, Username: "mailer@acme.example",
		Password: "relay-password", From: "Acme <no-reply@acme.example>", RootCAs: rootCAs, Timeout: 5 * time.Second, AllowPrivateNetwork: true}}
}

func TestAWithheldCodeFailsLikeADeliveryWhileTheRelayIsDown(t *testing.T) {
	const refused = "no.such.mailbox@example.com"
	relay := smtptest.Start(t, smtptest.StartTLS, "mailer@acme.example", "relay-password", smtptest.RefusingRecipients(refused))
	o := newOutage(t, smtpTo(relay.Port, relay.RootCAs))
	free, taken := emailTo("free@example.com"), emailTo("taken@example.com")
	o.mustSend("relay up", free, true)
	<-relay.Deliveries
	o.mustWithhold("relay up", taken, true)

	// A recipient the relay refuses is the recipient's failure: the
	// prober chooses it, so it changes nothing a withheld code answers.
	o.mustSend("a refused recipient", emailTo(refused), false)
	o.mustWithhold("after a refused recipient", taken, true)

	relay.Unavailable(true)
	o.mustSend("relay refusing us", free, false)
	o.mustWithhold("relay refusing us", taken, false)
	o.mustSend("relay still refusing us", emailTo(refused), false) // fails before RCPT TO
	o.mustWithhold("relay still refusing us", taken, false)

	// Back up: a withheld code knows it from a real delivery only.
	relay.Unavailable(false)
	o.mustWithhold("relay back, no delivery since", taken, false)
	o.mustSend("relay back", free, true)
	<-relay.Deliveries
	o.mustWithhold("relay back, a delivery since", taken, true)
	// A refused recipient does not put the sender back down either.
	o.mustSend("a refused recipient", emailTo(refused), false)
	o.mustWithhold("after a refused recipient", taken, true)
}

// An address that is not ASCII needs SMTPUTF8, asked at MAIL FROM: a relay
// without it (as this one) fails there, before RCPT TO, for that recipient
// alone. A prober sending codes to such addresses must not make the sender
// look down, or withheld codes would fail while free ASCII ones got through.
func TestARecipientNeedingSMTPUTF8DoesNotMakeWithheldCodesFail(t *testing.T) {
	relay := smtptest.Start(t, smtptest.StartTLS, "mailer@acme.example", "relay-password")
	o := newOutage(t, smtpTo(relay.Port, relay.RootCAs))
	taken := emailTo("taken@example.com")
	o.mustSend("relay up", emailTo("free@example.com"), true)
	<-relay.Deliveries
	o.mustSend("a recipient needing SMTPUTF8", emailTo("élodie@example.com"), false)
	o.mustWithhold("after a recipient needing SMTPUTF8", taken, true)
}

// A relay that goes away (nothing listens on its port) is down from the
// first failed dial.
func TestAWithheldCodeFailsLikeADeliveryWhenTheRelayIsGone(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	o := newOutage(t, smtpTo(port, ""))
	o.mustSend("relay gone", emailTo("free@example.com"), false)
	o.mustWithhold("relay gone", emailTo("taken@example.com"), false)
}

// Down lasts DownFor after the last failure of the sender's own without a
// real send to refresh it: a withheld code must not fail for ever after
// the relay is back where a free address's code would get through.
func TestASendersDownExpiresWithoutNews(t *testing.T) {
	relay := smtptest.Start(t, smtptest.StartTLS, "mailer@acme.example", "relay-password")
	o := newOutage(t, smtpTo(relay.Port, relay.RootCAs))
	relay.Unavailable(true)
	o.mustSend("relay refusing us", emailTo("free@example.com"), false)
	o.clock = o.clock.Add(DownFor - time.Second)
	o.mustWithhold("just before the window ends", emailTo("taken@example.com"), false)
	o.clock = o.clock.Add(time.Second)
	o.mustWithhold("the window over", emailTo("taken@example.com"), true)
	// A new failure opens a new window.
	o.mustSend("relay refusing us again", emailTo("free@example.com"), false)
	o.mustWithhold("relay refusing us again", emailTo("taken@example.com"), false)
}

// An SMS gateway's own trouble (unreachable, 5xx, 429, 401/403: our
// credentials) puts the sender down; a 4xx about the message (an invalid
// number) does not, whatever the gateway's type.
func TestAWithheldCodeFailsLikeADeliveryWhileTheGatewayIsDown(t *testing.T) {
	const invalid = "+33699999999"
	var status atomic.Int32
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body, _ := io.ReadAll(r.Body); strings.Contains(string(body), invalid[1:]) { // Twilio's form or the webhook's JSON
			http.Error(w, `{"code":21211,"message":"invalid 'To' phone number"}`, http.StatusBadRequest)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer gw.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	twilio := func(url string) Config {
		return Config{Type: typeTwilio, Twilio: &TwilioConfig{AccountSID: "AC123", AuthToken: "token", From: "+33700000000",
			BaseURL: url, Timeout: 5 * time.Second, AllowPrivateNetwork: true}}
	}
	webhook := func(url string) Config {
		return Config{Type: typeWebhook, Webhook: &WebhookConfig{URL: url, Secret: strings.Repeat("s", 32),
			Timeout: 5 * time.Second, AllowPrivateNetwork: true}}
	}
	free, taken := smsTo("+33612345678"), smsTo("+33687654321")
	for name, c := range map[string]Config{"twilio": twilio(gw.URL), "webhook": webhook(gw.URL)} {
		t.Run(name, func(t *testing.T) {
			o := newOutage(t, c)
			for _, tc := range []struct {
				status int
				down   bool
			}{
				{http.StatusServiceUnavailable, true}, {http.StatusInternalServerError, true}, {http.StatusBadGateway, true},
				{http.StatusTooManyRequests, true}, {http.StatusUnauthorized, true}, {http.StatusForbidden, true},
				{http.StatusBadRequest, false}, {http.StatusNotFound, false}, {http.StatusUnprocessableEntity, false},
			} {
				status.Store(http.StatusCreated)
				o.mustSend("gateway up", free, true)
				status.Store(int32(tc.status))
				o.mustSend(http.StatusText(tc.status), free, false)
				o.mustWithhold("gateway answering "+http.StatusText(tc.status), taken, !tc.down)
			}
			status.Store(http.StatusCreated)
			o.mustSend("gateway up", free, true)
			o.mustSend("an invalid number", smsTo(invalid), false)
			o.mustWithhold("after an invalid number", taken, true)
		})
	}
	t.Run("gateway gone", func(t *testing.T) {
		for _, c := range []Config{twilio(gone.URL), webhook(gone.URL)} {
			o := newOutage(t, c)
			o.mustSend("gateway gone", free, false)
			o.mustWithhold("gateway gone", taken, false)
		}
	})
}

// A relay may refuse a recipient only once it has the message: a permanent
// answer at the end of DATA (Amazon SES's sandbox, for an address it has
// not verified). That is the recipient's failure too; a relay that cannot
// take the message now answers 4xx, or not at all.
func TestARecipientRefusedAtDataDoesNotMakeWithheldCodesFail(t *testing.T) {
	const late = "not.verified@example.com"
	relay := smtptest.Start(t, smtptest.StartTLS, "mailer@acme.example", "relay-password", smtptest.RefusingAtData(late))
	o := newOutage(t, smtpTo(relay.Port, relay.RootCAs))
	taken := emailTo("taken@example.com")
	o.mustSend("relay up", emailTo("free@example.com"), true)
	<-relay.Deliveries
	o.mustSend("a recipient refused at DATA", emailTo(late), false)
	o.mustWithhold("after a recipient refused at DATA", taken, true)
}

// A redirect is not followed (egress): a gateway answering 3xx sent
// nothing, whoever the number. It is the gateway's failure, not a refused
// recipient: else a token holder's contact change, refused as a withheld
// code is answered, would get 202 with no SMS, and the sender never be
// taken for down (found by an audit).
func TestARedirectingGatewayIsDownNotARefusedRecipient(t *testing.T) {
	var status atomic.Int32
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "https://gateway.example/moved")
		w.WriteHeader(int(status.Load()))
	}))
	defer gw.Close()
	free, taken := smsTo("+33612345678"), smsTo("+33687654321")
	for name, c := range map[string]Config{
		"twilio": {Type: typeTwilio, Twilio: &TwilioConfig{AccountSID: "AC123", AuthToken: "token", From: "+33700000000",
			BaseURL: gw.URL, Timeout: 5 * time.Second, AllowPrivateNetwork: true}},
		"webhook": {Type: typeWebhook, Webhook: &WebhookConfig{URL: gw.URL, Secret: strings.Repeat("s", 32),
			Timeout: 5 * time.Second, AllowPrivateNetwork: true}},
	} {
		t.Run(name, func(t *testing.T) {
			o := newOutage(t, c)
			for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
				http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
				status.Store(http.StatusCreated)
				o.mustSend("gateway up", free, true)
				status.Store(int32(code))
				err := o.send(free)
				if err == nil || RefusedRecipient(err) {
					t.Fatalf("a %d: %v, want the gateway's failure", code, err)
				}
				o.mustWithhold(fmt.Sprintf("gateway answering %d", code), taken, false)
			}
		})
	}
}
