package client_test

import (
	"context"
	"crypto"
	"testing"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
)

// TestKeyTypes: a CSR from NewCSR for every key type the agent offers is
// accepted by the CA, and the certificate is for that key.
func TestKeyTypes(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	c := newClient(t, ca)
	token := ca.Token(t, webapp)
	for _, kt := range rotor.KeyTypes {
		t.Run("ok/"+string(kt), func(t *testing.T) {
			key, err := rotor.GenerateKey(kt, nil)
			if err != nil {
				t.Fatal(err)
			}
			issued, err := c.Issue(context.Background(), client.IssueRequest{CSR: newCSR(t, key), Token: token})
			if err != nil {
				t.Fatal(err)
			}
			if !issued.Leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
				t.Error("certificate is not for the key")
			}
		})
	}
}
