package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/rotor-dev/rotor"
)

// RenewalInfo is the CA's advice on when to renew one certificate.
type RenewalInfo struct {
	// Window is when the CA suggests renewing (RFC 9773's suggestedWindow);
	// Window.RenewAt picks the moment.
	Window rotor.RenewalWindow
	// RetryAfter is how long the CA asks the holder to wait before asking
	// again; zero if it said nothing. Read from Retry-After's delay-seconds
	// form, the one Rotor sends; an HTTP-date reads as nothing.
	RetryAfter time.Duration
}

// RenewalInfo asks the CA when it suggests renewing the certificate with
// serial (hex). It sends no credentials: the CA answers anyone, and a
// revoked certificate could not have authenticated the question. An
// unknown serial is rotor.ENotFound; an outage is retryable, as for every
// request.
func (c *Client) RenewalInfo(ctx context.Context, serial string) (*RenewalInfo, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/renewal-info/"+url.PathEscape(serial), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", rotor.MediaJSON)
	resp, err := c.do(c.http, req, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var b rotor.RenewalInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, rotor.MaxResponse)).Decode(&b); err != nil {
		return nil, rotor.WrapError(rotor.EInternal, err, "CA answered unreadable renewal info for %s", serial)
	}
	w := b.SuggestedWindow
	if w.Start.IsZero() || w.End.Before(w.Start) {
		return nil, rotor.Errorf(rotor.EInternal, "CA answered renewal window [%v, %v] for %s, which is no window", w.Start, w.End, serial)
	}
	return &RenewalInfo{Window: w, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}, nil
}
