package authn

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
)

// apiServer is a real TLS server speaking the Kubernetes TokenReview API:
// it checks the CA's own bearer token and the request's shape, and answers
// per reviewed token from answers (unknown tokens are refused, as the API
// server refuses them).
type apiServer struct {
	*httptest.Server
	mu        sync.Mutex
	caToken   string         // what the CA must present
	audiences []string       // what spec.audiences must be
	answers   map[string]any // token -> status object
	status    int            // if set, answered instead of a review
	raw       string         // if set, sent as a 201 body instead of a review
	hits      int
	bad       []string // protocol violations seen
}

func newAPIServer(t testing.TB, answers map[string]any) *apiServer {
	s := &apiServer{caToken: "ca-token-1", audiences: []string{"rotor"}, answers: answers}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.bad) > 0 {
			t.Errorf("the CA broke the TokenReview protocol: %v", s.bad)
		}
	})
	return s
}

func (s *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits++
	if r.Header.Get("Authorization") != "Bearer "+s.caToken {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"kind": "Status", "apiVersion": "v1",
			"status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
		return
	}
	var req struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Token     string   `json:"token"`
			Audiences []string `json:"audiences"`
		} `json:"spec"`
	}
	err := json.NewDecoder(r.Body).Decode(&req)
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews":
		s.bad = append(s.bad, fmt.Sprintf("%s %s", r.Method, r.URL.Path))
	case r.Header.Get("Content-Type") != "application/json":
		s.bad = append(s.bad, "content type "+r.Header.Get("Content-Type"))
	case err != nil || req.APIVersion != "authentication.k8s.io/v1" || req.Kind != "TokenReview" || req.Spec.Token == "":
		s.bad = append(s.bad, fmt.Sprintf("body %+v (%v)", req, err))
	case !reflect.DeepEqual(req.Spec.Audiences, s.audiences):
		s.bad = append(s.bad, fmt.Sprintf("audiences %q", req.Spec.Audiences))
	default:
		if s.status != 0 {
			writeJSON(w, s.status, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure"})
			return
		}
		if s.raw != "" {
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(s.raw))
			return
		}
		status, ok := s.answers[req.Spec.Token]
		if !ok {
			status = map[string]any{"user": map[string]any{}, "error": "[invalid bearer token, token lookup failed]"}
		}
		writeJSON(w, http.StatusCreated, map[string]any{"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
			"metadata": map[string]any{"creationTimestamp": nil}, "spec": req.Spec, "status": status})
		return
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *apiServer) update(f func(s *apiServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *apiServer) reviews() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

// accepted is the status the API server gives a valid token of username
// with audiences.
func accepted(username string, audiences ...string) map[string]any {
	st := map[string]any{"authenticated": true,
		"user": map[string]any{"username": username, "uid": "5c8a6f1e-2b44-4f57-a2f4-1b2f6d9c1e22",
			"groups": []string{"system:serviceaccounts", "system:authenticated"}}}
	if audiences != nil {
		st["audiences"] = audiences
	}
	return st
}
