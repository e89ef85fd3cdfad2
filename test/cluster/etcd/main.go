// Command etcd is a minimal single-member etcd server for the end-to-end test
// control plane (see ../README.md). It embeds go.etcd.io/etcd/server/v3/embed,
// so the test harness needs no etcd release binary.
//
// Usage:
//
//	etcd --data-dir DIR --listen-client-url http://127.0.0.1:PORT --listen-peer-url http://127.0.0.1:PORT
//
// It exits with status 0 after SIGTERM or SIGINT once the server has shut down.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	etcdversion "go.etcd.io/etcd/api/v3/version"
	"go.etcd.io/etcd/server/v3/embed"
)

func serverVersion() string { return etcdversion.Version }

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "etcd: %v\n", err)
		os.Exit(1)
	}
}

func parseURL(name, raw string) (url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return url.URL{}, fmt.Errorf("--%s: %w", name, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return url.URL{}, fmt.Errorf("--%s: want http(s)://host:port, got %q", name, raw)
	}
	return *u, nil
}

func run() error {
	var (
		name        = flag.String("name", "e2e", "member name")
		dataDir     = flag.String("data-dir", "", "data directory (required)")
		clientURL   = flag.String("listen-client-url", "http://127.0.0.1:2379", "URL to serve clients on (also advertised)")
		peerURL     = flag.String("listen-peer-url", "http://127.0.0.1:2380", "URL to serve peers on (also advertised)")
		logLevel    = flag.String("log-level", "warn", "debug, info, warn or error")
		logOutput   = flag.String("log-output", "stderr", "stderr, stdout or a file path")
		noFsync     = flag.Bool("unsafe-no-fsync", false, "disable fsync (faster, loses data on a crash; fine for throwaway test clusters)")
		quota       = flag.Int64("quota-backend-bytes", 2<<30, "backend size quota in bytes")
		readyTimout = flag.Duration("ready-timeout", 60*time.Second, "give up if the server is not ready within this time")
		version     = flag.Bool("version", false, "print the embedded etcd server version and exit")
	)
	flag.Parse()
	if *version {
		fmt.Println(serverVersion())
		return nil
	}
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %v", flag.Args())
	}
	if *dataDir == "" {
		return fmt.Errorf("--data-dir is required")
	}
	cu, err := parseURL("listen-client-url", *clientURL)
	if err != nil {
		return err
	}
	pu, err := parseURL("listen-peer-url", *peerURL)
	if err != nil {
		return err
	}

	cfg := embed.NewConfig()
	cfg.Name = *name
	cfg.Dir = *dataDir
	cfg.ListenClientUrls = []url.URL{cu}
	cfg.AdvertiseClientUrls = []url.URL{cu}
	cfg.ListenPeerUrls = []url.URL{pu}
	cfg.AdvertisePeerUrls = []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.Logger = "zap"
	cfg.LogLevel = *logLevel
	cfg.LogOutputs = []string{*logOutput}
	cfg.UnsafeNoFsync = *noFsync
	cfg.QuotaBackendBytes = *quota
	// NewConfig leaves this at 0, which logs every request as "expensive".
	cfg.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer e.Close()

	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintf(os.Stderr, "etcd: ready, serving clients on %s\n", cu.String())
	case err := <-e.Err():
		return fmt.Errorf("while starting: %w", err)
	case <-time.After(*readyTimout):
		e.Server.Stop()
		return fmt.Errorf("not ready after %s", *readyTimout)
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "etcd: signal received while starting, shutting down")
		return nil
	}

	select {
	case err := <-e.Err():
		return fmt.Errorf("server error: %w", err)
	case <-e.Server.StopNotify():
		return fmt.Errorf("server stopped unexpectedly")
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "etcd: signal received, shutting down")
		return nil // deferred e.Close() stops the server gracefully
	}
}
