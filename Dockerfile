# syntax=docker/dockerfile:1
#
# The e4c2 server in a container: a static binary (CGO_ENABLED=0) on a
# distroless base, run as a non-root user, its data (store, master key,
# checkpoints, first admin token) on the /var/lib/e4c2 volume.
#
#   docker build -t e4c2 .
#   e4c2 tls init --dir tls --hosts e4c2.example.org      # or your PKI: server.crt, server.key
#   docker run -d --name e4c2 -p 8443:8443 -p 8883:8883 \
#     -v e4c2-data:/var/lib/e4c2 -v "$PWD/tls:/etc/e4c2/tls:ro" e4c2
#   docker exec e4c2 cat /var/lib/e4c2/admin.token        # the first admin token, once
#
# Both listeners are TLS: tokens and device credentials never cross the
# network in clear. Any other setting: append flags, or mount a JSON file
# (docs/e4c2.sample.json) and run "serve --config /etc/e4c2/e4c2.json".
# The master key is created in the data volume on first start; to keep it
# apart from the store (recommended, see README "Production"), mount it
# read-only and pass --master-key-file, or use --master-key-env.

# The go directive of go.mod (a test keeps them equal): golang images run
# with GOTOOLCHAIN=local, so an older image would refuse the module.
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, for the layer cache (third_party holds a replaced module).
COPY go.mod go.sum ./
COPY third_party ./third_party
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/e4c2 ./cmd/e4c2 \
 && mkdir -p /out/data /out/tls

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/e4c2 /usr/local/bin/e4c2
# Owned by the nonroot user (65532): the server creates its files 0600.
COPY --from=build --chown=65532:65532 /out/data /var/lib/e4c2
COPY --from=build /out/tls /etc/e4c2/tls
USER 65532:65532
VOLUME ["/var/lib/e4c2"]
EXPOSE 8443 8883
ENTRYPOINT ["/usr/local/bin/e4c2"]
CMD ["serve", "--data-dir", "/var/lib/e4c2", \
     "--http-listen", "0.0.0.0:8443", "--tls-cert-file", "/etc/e4c2/tls/server.crt", "--tls-key-file", "/etc/e4c2/tls/server.key", \
     "--mqtt-listen", "0.0.0.0:8883", "--mqtt-tls-cert-file", "/etc/e4c2/tls/server.crt", "--mqtt-tls-key-file", "/etc/e4c2/tls/server.key", \
     "--admin-token-file", "/var/lib/e4c2/admin.token"]
