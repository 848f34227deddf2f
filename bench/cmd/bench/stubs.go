package main

import "context"

func (h *harness) fleet(ctx context.Context) error    { return nil }
func (h *harness) replicas(ctx context.Context) error { return nil }
func (h *harness) agent(ctx context.Context) error    { return nil }
