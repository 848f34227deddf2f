# Rotor images, one target per binary:
#
#   docker build --target rotor-ca         -t rotor-ca:dev .          the CA (PKCS#11-capable)
#   docker build --target rotor-ca-softhsm -t rotor-ca-softhsm:dev .  the CA plus SoftHSM2, for docker-compose.yml
#   docker build --target rotor-agent      -t rotor-agent:dev .       the sidecar agent
#   docker build --target rotor-demo       -t rotor-demo:dev .        the demo's webapp and api services
#
# Every runtime image runs as UID/GID 65532 (distroless "nonroot"), the same
# in all of them, so a service can read the key.pem (mode 0600) its agent
# writes into a shared volume.

# Go 1.27.3: the toolchain go.mod names, for the security fixes it carries.
ARG GO_VERSION=1.27.3

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The agent and the demo services are pure Go: fully static, no libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/rotor-agent ./cmd/rotor-demo
# rotor-ca loads the HSM vendor's PKCS#11 module with dlopen, which needs cgo
# and a dynamically linked glibc (a static glibc cannot dlopen reliably). It
# is therefore built with cgo against this bookworm glibc and runs on
# bookworm-slim below; a CGO_ENABLED=0 build would work too but answers
# --signer pkcs11 with "built without PKCS#11 support".
RUN CGO_ENABLED=1 go build -trimpath -ldflags='-s -w' -o /out/rotor-ca ./cmd/rotor-ca
# Empty mount points owned by the runtime user: a named volume mounted there
# starts with the owner of the directory it covers.
RUN mkdir -p /out/empty

FROM debian:bookworm-slim AS rotor-ca
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/rotor-ca /usr/local/bin/rotor-ca
RUN mkdir -p /var/lib/rotor/pki && chown -R 65532:65532 /var/lib/rotor
USER 65532:65532
WORKDIR /var/lib/rotor
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/rotor-ca"]
CMD ["serve", "--listen", "0.0.0.0:8443"]

# For docker-compose.yml only: SoftHSM2 stands in for an HSM, and
# rotor-ca-init.sh initialises its token and runs `rotor-ca init --signer
# pkcs11`. A real deployment mounts its vendor's PKCS#11 module into the
# rotor-ca image instead.
FROM rotor-ca AS rotor-ca-softhsm
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/compose/softhsm2.conf /etc/rotor/softhsm2.conf
COPY deploy/compose/rotor-ca-init.sh /usr/local/bin/rotor-ca-init.sh
RUN chmod 0755 /usr/local/bin/rotor-ca-init.sh \
 && mkdir -p /var/lib/softhsm/tokens /var/lib/rotor/ca /var/lib/rotor/root \
      /var/lib/rotor/tokens/webapp /var/lib/rotor/tokens/api \
 && chown -R 65532:65532 /var/lib/softhsm /var/lib/rotor \
 && chmod 0700 /var/lib/softhsm /var/lib/rotor/ca /var/lib/rotor/root
ENV SOFTHSM2_CONF=/etc/rotor/softhsm2.conf
USER 65532:65532

FROM gcr.io/distroless/static-debian12:nonroot AS rotor-agent
COPY --from=build /out/rotor-agent /usr/local/bin/rotor-agent
COPY --from=build --chown=65532:65532 /out/empty /var/lib/rotor/certs
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rotor-agent"]

FROM gcr.io/distroless/static-debian12:nonroot AS rotor-demo
COPY --from=build /out/rotor-demo /usr/local/bin/rotor-demo
COPY --from=build --chown=65532:65532 /out/empty /var/lib/rotor/certs
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/rotor-demo"]
