package client_test

import (
	"context"
	"crypto"
	"testing"

	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/client/clienttest"
)

// TestKeyTypes: every key type the agent offers round-trips through PEM
// and is accepted by the CA.
func TestKeyTypes(t *testing.T) {
	t.Parallel()
	ca := clienttest.New(t, clienttest.Options{})
	c := newClient(t, ca)
	token := ca.Token(t, webapp)
	for _, kt := range client.KeyTypes {
		t.Run("ok/"+string(kt), func(t *testing.T) {
			key, err := client.GenerateKey(kt)
			if err != nil {
				t.Fatal(err)
			}
			pemKey, err := client.EncodeKey(key)
			if err != nil {
				t.Fatal(err)
			}
			back, err := client.ParseKey(pemKey)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := client.KeyTypeOf(back.Public()); !ok || got != kt {
				t.Errorf("parsed key is %q, want %q", got, kt)
			}
			issued, err := c.Issue(context.Background(), client.IssueRequest{CSR: newCSR(t, back), Token: token})
			if err != nil {
				t.Fatal(err)
			}
			if !issued.Leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
				t.Error("certificate is not for the key")
			}
		})
	}
	t.Run("fail/unknown-type", func(t *testing.T) {
		if _, err := client.ParseKeyType("dsa-1024"); err == nil {
			t.Error("dsa-1024 accepted")
		}
		if _, err := client.GenerateKey("dsa-1024"); err == nil {
			t.Error("dsa-1024 generated")
		}
	})
	t.Run("fail/not-a-key", func(t *testing.T) {
		if _, err := client.ParseKey(ca.Bundle.PEM); err == nil {
			t.Error("a certificate parsed as a key")
		}
	})
}
