package main

import (
	"slices"
	"testing"
)

// TestExecEnvDropsToken: the --exec hook's environment is the agent's
// without ROTOR_TOKEN, the CA credential.
func TestExecEnvDropsToken(t *testing.T) {
	t.Parallel()
	got := environWithout([]string{"PATH=/bin", "ROTOR_TOKEN=rotor_secret", "ROTOR_TOKEN_FILE=/t", "HOME=/root"}, "ROTOR_TOKEN")
	if want := []string{"PATH=/bin", "ROTOR_TOKEN_FILE=/t", "HOME=/root"}; !slices.Equal(got, want) {
		t.Errorf("environment %v, want %v", got, want)
	}
}
