// Package identitypb is the generated Go code of Linkerd's identity API
// (io.linkerd.proxy.identity.Identity/Certify), from identity.proto. The
// generated files are committed, so a build needs no protoc; gen.sh makes
// them again, and TestGeneratedCode checks they are what it makes.
package identitypb

//go:generate sh gen.sh
