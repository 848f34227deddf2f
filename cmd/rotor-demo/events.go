package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/agent"
)

// printer writes the demo's lines, one writer at a time:
// "15:04:05  who           text".
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) line(who, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s  %-12s  %s\n", time.Now().Format(time.TimeOnly), who, text)
}

func (p *printer) say(who, format string, args ...any) { p.line(who, fmt.Sprintf(format, args...)) }

// tally is what the demo has seen in its children's output, for the
// per-second lines and the summary. Safe for concurrent use.
type tally struct {
	mu        sync.Mutex
	issued    int            // the CA's certificate.issued events
	written   map[string]int // per service: the agent's certificate.written events
	rotations map[string]int // per service: certificate changes the service itself made
	peerCerts map[string]int // per service: distinct peer certificates in its handshakes
	final     map[string]bool
	requests  int64 // webapp's totals
	failed    int64
	refused   int64 // api's refusals
	reported  int64 // requests at the last per-second line
	repFailed int64
}

func newTally() *tally {
	return &tally{written: map[string]int{}, rotations: map[string]int{}, peerCerts: map[string]int{}, final: map[string]bool{}}
}

// caLine handles a line of rotor-ca's JSON log: the demo acts on events
// (rotor.LogEvent), never on message text, and prints the rest as it is.
func (d *demo) caLine(line string) {
	r := parseJSON(line)
	switch r.get(rotor.LogEvent) {
	case rotor.EventServing:
		offer(d.caAddr, r.get("addr"))
	case rotor.EventIssued:
		d.t.mu.Lock()
		d.t.issued++
		d.t.mu.Unlock()
	}
	if r.Level != "DEBUG" {
		d.p.line("ca", r.render())
	}
}

// agentLine handles a line of a rotor-agent's JSON log.
func (d *demo) agentLine(svc string) func(string) {
	return func(line string) {
		r := parseJSON(line)
		if r.get(rotor.LogEvent) == agent.EventWritten {
			d.t.mu.Lock()
			d.t.written[svc]++
			d.t.mu.Unlock()
		}
		if r.Level != "DEBUG" {
			d.p.line("agent/"+svc, r.render())
		}
	}
}

// roleLine handles a line of a service role's JSON log, turning its events
// into sentences.
func (d *demo) roleLine(svc string) func(string) {
	return func(line string) {
		r := parseJSON(line)
		t := d.t
		t.mu.Lock()
		defer t.mu.Unlock()
		switch r.get("event") {
		case eventListening:
			offer(d.apiAddr, r.get("addr"))
			d.p.say(svc, "listening on %s, accepting only %s", r.get("addr"), r.get("allow"))
		case eventCert:
			n := atoi(r.get("rotation"))
			t.rotations[svc] = n
			if n == 0 {
				d.p.say(svc, "using certificate %s of %s, valid until %s", shorten(r.get("serial")), r.get("identity"), shorten(r.get("not_after")))
			} else {
				d.p.say(svc, "ROTATION %d: now using certificate %s, valid until %s", n, shorten(r.get("serial")), shorten(r.get("not_after")))
			}
		case eventPeerCert:
			d.p.say(svc, "peer %s presents certificate %s (%s seen so far)", r.get("peer"), shorten(r.get("serial")), r.get("seen"))
		case eventStats:
			t.requests, t.failed = atoi64(r.get("requests")), atoi64(r.get("failed"))
			d.p.say(svc, "requests: %d in the last second, %d failed (total %d, %d failed)",
				t.requests-t.reported, t.failed-t.repFailed, t.requests, t.failed)
			t.reported, t.repFailed = t.requests, t.failed
		case eventFinal:
			t.final[svc] = true
			t.rotations[svc] = atoi(r.get("rotations"))
			t.peerCerts[svc] = atoi(r.get("peer_certificates"))
			if svc == "webapp" {
				t.requests, t.failed = atoi64(r.get("requests")), atoi64(r.get("failed"))
			} else {
				t.refused = atoi64(r.get("refused"))
			}
			if svc == "webapp" {
				d.p.say(svc, "stopped: %d requests, %d failed; %d rotations; saw %d certificates of the api",
					t.requests, t.failed, t.rotations[svc], t.peerCerts[svc])
			} else {
				d.p.say(svc, "stopped: served %s requests, refused %d; %d rotations; saw %d certificates of webapp",
					r.get("served"), t.refused, t.rotations[svc], t.peerCerts[svc])
			}
		default: // eventFailed, eventRefused and anything else, as logged
			r.Attrs = slices.DeleteFunc(r.Attrs, func(a attr) bool { return a.Key == "role" })
			d.p.line(svc, r.render())
		}
	}
}

// offer sends v if nobody has yet: the first address is the one.
func offer(ch chan string, v string) {
	select {
	case ch <- v:
	default:
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func atoi64(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
