package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor"
)

// Result is what the clients saw in one run.
type Result struct {
	Conc      int            `json:"c"`
	Elapsed   time.Duration  `json:"elapsed_ns"`
	Issued    int            `json:"issued"`
	PerSecond float64        `json:"issued_per_s"`
	P50       time.Duration  `json:"p50_ns"`
	P95       time.Duration  `json:"p95_ns"`
	P99       time.Duration  `json:"p99_ns"`
	Errors    map[string]int `json:"errors"` // by cause: a status, or a transport failure's kind
	Serials   []string       `json:"-"`
}

// Run sends requests until ctx ends, the duration passes or N requests
// were sent, and returns what came back. Bodies come from Bodies.
func Run(ctx context.Context, c Config, bodies [][]byte) (*Result, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if c.N <= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Duration)
		defer cancel()
	}
	hc := c.httpClient()
	defer hc.CloseIdleConnections()
	var (
		mu   sync.Mutex
		all  worker
		left atomic.Int64
		wg   sync.WaitGroup
	)
	left.Store(int64(c.N))
	start := time.Now()
	for w := range c.Conc {
		wg.Go(func() {
			mine := worker{c: c, hc: hc, url: c.URLs[w%len(c.URLs)], errors: map[string]int{}}
			mine.run(ctx, bodies, w, &left)
			mu.Lock()
			all.merge(&mine)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all.result(c.Conc, time.Since(start)), nil
}

// worker is one client: its own share of the latencies and errors, merged
// at the end so the hot loop takes no lock.
type worker struct {
	c         Config
	hc        *http.Client
	url       string
	latencies []time.Duration
	errors    map[string]int
	serials   []string
}

// run issues until ctx ends or, with a count, none is left.
func (w *worker) run(ctx context.Context, bodies [][]byte, first int, left *atomic.Int64) {
	for i := first; ctx.Err() == nil; i += w.c.Conc {
		if w.c.N > 0 && left.Add(-1) < 0 {
			return
		}
		w.one(ctx, bodies[i%len(bodies)])
	}
}

// one sends one request and notes its outcome.
func (w *worker) one(ctx context.Context, body []byte) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.url+"/v1/certificates", bytes.NewReader(body))
	req.Header.Set("Content-Type", rotor.MediaJSON)
	if w.c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+w.c.Token)
	}
	t0 := time.Now()
	resp, err := w.hc.Do(req)
	if err != nil {
		if ctx.Err() == nil { // a request cut off by the end of the run is no error
			w.errors[transportCause(err)]++
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		_, _ = io.Copy(io.Discard, resp.Body) // drain, so the connection is reused
		w.errors[strconv.Itoa(resp.StatusCode)]++
		return
	}
	if !w.c.KeepSerials {
		_, _ = io.Copy(io.Discard, resp.Body)
		w.latencies = append(w.latencies, time.Since(t0))
		return
	}
	var out struct {
		Serial string `json:"serial"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Serial == "" {
		w.errors["unreadable-201"]++
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	w.latencies = append(w.latencies, time.Since(t0))
	w.serials = append(w.serials, out.Serial)
}

// transportCause names why a request got no answer, for the error counts.
func transportCause(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection-refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF):
		return "connection-reset"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EMFILE):
		return "no-local-port-or-fd"
	}
	var netErr interface{ Timeout() bool }
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timeout"
	}
	return "transport-other"
}

// merge adds o's figures to w's.
func (w *worker) merge(o *worker) {
	if w.errors == nil {
		w.errors = map[string]int{}
	}
	w.latencies = append(w.latencies, o.latencies...)
	w.serials = append(w.serials, o.serials...)
	for k, v := range o.errors {
		w.errors[k] += v
	}
}

// result sorts the latencies and reads the percentiles off them.
func (w *worker) result(conc int, elapsed time.Duration) *Result {
	slices.Sort(w.latencies)
	return &Result{Conc: conc, Elapsed: elapsed, Issued: len(w.latencies),
		PerSecond: float64(len(w.latencies)) / elapsed.Seconds(),
		P50:       Percentile(w.latencies, 0.50), P95: Percentile(w.latencies, 0.95),
		P99: Percentile(w.latencies, 0.99), Errors: w.errors, Serials: w.serials}
}

// Percentile is the p-quantile (0..1) of sorted, zero if it is empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}
