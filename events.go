package rotor

// LogEvent is the attribute that names what a log line reports, for the
// programs that follow Rotor's logs (the demo, tests, log pipelines). A
// message is for people and may be reworded; an event name and its
// attributes stay as they are. Every package that logs events defines its
// names beside the code that logs them.
const LogEvent = "event"

// Events the CA logs.
const (
	// EventServing: the CA accepts connections. Attributes: addr, its
	// https:// address, so a caller that asked for port 0 learns the port.
	EventServing = "ca.serving"
	// EventIssued: a certificate was issued and its audit row committed.
	// Attributes: identity, serial, not_before, not_after, authenticator.
	EventIssued = "certificate.issued"
	// EventRefused: a request was refused. Attributes: reason (an
	// ErrorCode), identity (when known), remote_addr.
	EventRefused = "certificate.refused"
)
