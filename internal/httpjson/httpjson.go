// Package httpjson is how Rotor's HTTP adapters (api/ and acme/) answer
// with a JSON body, so both say it the same way.
package httpjson

import (
	"encoding/json"
	"net/http"

	"github.com/rotor-dev/rotor"
)

// Write answers v as JSON with status. Answers carry certificates and
// account state made for one caller, so no cache may keep them.
func Write(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", rotor.MediaJSON)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the status is sent; a failed write is the client gone
}
