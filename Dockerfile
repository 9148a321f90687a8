# syntax=docker/dockerfile:1
#
# docker build -t go-seckill/seckill .
# The image runs one instance; configure it with SECKILL_* environment
# variables (see config/seckill.yaml) and run several behind a load balancer
# as in docker-compose.yml.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/seckill .

# Alpine rather than distroless: busybox wget lets health checks probe /readyz.
FROM alpine:3.22
RUN apk add --no-cache ca-certificates tzdata \
 && addgroup -S -g 10001 seckill \
 && adduser -S -D -H -u 10001 -G seckill seckill \
 && mkdir -p /app/data \
 && chown -R seckill:seckill /app
COPY --from=build /out/seckill /usr/local/bin/seckill
# The working directory holds data/nsqd when no external nsqd is configured.
WORKDIR /app
USER seckill:seckill
ENV SECKILL_HTTP_ADDR=:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD wget -qO- http://127.0.0.1:8080/readyz >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/seckill"]
