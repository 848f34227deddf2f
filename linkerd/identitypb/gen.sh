#!/bin/sh
# Generates the Go code of identity.proto into ${1:-.} with Debian's protoc
# (apt-get install -y protobuf-compiler) and the plugins pinned as tools in
# go.mod, so the code only changes when the proto or a pinned version does.
# TestGeneratedCode holds the committed files to this script's output.
set -eu
cd "$(dirname "$0")"
out="$(cd "${1:-.}" && pwd)"
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
PATH="$bin:$PATH" protoc -I . \
    --go_out="$out" --go_opt=paths=source_relative \
    --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
    identity.proto
