package main

import (
	"fmt"
	"strconv"
	"strings"
)

// summary prints what the run showed and ends with one line of key=value
// pairs for scripts and tests. It returns errFailed unless every request
// succeeded, at least one was made, and both services reported their
// totals.
func (d *demo) summary() error {
	t := d.t
	t.mu.Lock()
	defer t.mu.Unlock()
	d.mu.Lock()
	problems := append([]string(nil), d.problems...)
	d.mu.Unlock()
	if t.failed > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d requests failed", t.failed, t.requests))
	}
	if t.requests == 0 && len(problems) == 0 {
		problems = append(problems, "webapp made no request")
	}
	for _, svc := range services {
		if !t.final[svc] && len(problems) == 0 {
			problems = append(problems, svc+" did not report its totals")
		}
	}
	result := "ok"
	if len(problems) > 0 {
		result = "fail"
	}

	w := d.p.w
	fmt.Fprintln(w, strings.Repeat("-", 72))
	fmt.Fprintf(w, "Summary: %s of webapp calling api; certificates lived %s\n", d.ran, d.cfg.CertTTL)
	fmt.Fprintf(w, "  requests     %d made, %d failed\n", t.requests, t.failed)
	for _, svc := range services {
		fmt.Fprintf(w, "  %-12s %d rotations (its agent wrote %d certificates); it saw %d certificates of its peer\n",
			svc, t.rotations[svc], t.written[svc], t.peerCerts[svc])
	}
	fmt.Fprintf(w, "  rotor-ca     issued %d certificates; the api refused %d handshakes or requests\n", t.issued, t.refused)
	for _, p := range problems {
		fmt.Fprintf(w, "  FAILED: %s\n", p)
	}
	fmt.Fprintln(w, joinKV(
		"result", result,
		"duration", d.ran.String(),
		"cert_ttl", d.cfg.CertTTL.String(),
		"requests", strconv.FormatInt(t.requests, 10),
		"failed", strconv.FormatInt(t.failed, 10),
		"rotations_webapp", strconv.Itoa(t.rotations["webapp"]),
		"rotations_api", strconv.Itoa(t.rotations["api"]),
		"peer_certs_seen_by_webapp", strconv.Itoa(t.peerCerts["webapp"]),
		"peer_certs_seen_by_api", strconv.Itoa(t.peerCerts["api"]),
		"issued", strconv.Itoa(t.issued),
		"refused", strconv.FormatInt(t.refused, 10),
	))
	if result != "ok" {
		return errFailed
	}
	return nil
}
