package main

import "context"

func (h *harness) agent(ctx context.Context) error { return nil }
