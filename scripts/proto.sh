#!/usr/bin/env bash
# Regenerates heron/model/*.pb.go from heron/model/proto/*.proto (`make proto`).
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-go at the version go.mod pins:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$PATH:$(go env GOPATH)/bin"
command -v protoc >/dev/null || { echo "proto: protoc is missing; apt-get install protobuf-compiler" >&2; exit 1; }
command -v protoc-gen-go >/dev/null || { echo "proto: protoc-gen-go is missing; go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12" >&2; exit 1; }
protoc --proto_path=heron/model/proto \
  --go_out=heron/model --go_opt=paths=source_relative \
  heron/model/proto/*.proto
gofmt -l heron/model >/dev/null
