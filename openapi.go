package rotor

import _ "embed"

// OpenAPI is the API contract, served at GET /openapi.yaml and used by the
// tests that hold the server to it.
//
//go:embed openapi.yaml
var OpenAPI []byte
