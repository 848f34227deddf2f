// Command ceiling serves one of the ceilings Rotor is measured against
// (package bench/ceiling) over HTTPS on loopback: -mode bare, the bare Go
// CA, or -mode noop, the HTTPS no-op. It writes the root that verifies it
// to -root, logs the rotor.EventServing line with its address as rotor-ca
// does, and serves until SIGTERM or SIGINT.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/bench/ceiling"
)

func main() {
	mode := flag.String("mode", "bare", "bare (the bare Go CA) or noop (HTTPS no-op)")
	listen := flag.String("listen", "127.0.0.1:0", "HTTPS listen address (loopback)")
	root := flag.String("root", "ceiling-root.crt", "file to write the root certificate to")
	flag.Parse()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(*mode, *listen, *root, logger); err != nil {
		logger.Error("ceiling stopped", "error", err)
		os.Exit(1)
	}
}

func run(mode, listen, rootFile string, logger *slog.Logger) error {
	pki, err := ceiling.NewPKI()
	if err != nil {
		return err
	}
	var h http.Handler
	switch mode {
	case "bare":
		h = pki.Bare()
	case "noop":
		h = ceiling.Noop()
	default:
		return fmt.Errorf("-mode %q: want bare or noop", mode)
	}
	if err := os.WriteFile(rootFile, pki.RootPEM, 0o644); err != nil {
		return fmt.Errorf("write root: %w", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pki.Serving}, MinVersion: tls.VersionTLS12}}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	logger.Info("ceiling serving", rotor.LogEvent, rotor.EventServing, "mode", mode, "addr", "https://"+ln.Addr().String())
	if err := srv.ServeTLS(ln, "", ""); err != nil && ctx.Err() == nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
