# syntax=docker/dockerfile:1.7
# Shop's images: every binary built once with the pinned toolchain, then one
# small target per service on a distroless base, run as a non-root user.
#
#   docker build --target command-api -t shop/command-api .
#   docker build --target query-api   -t shop/query-api .
#   docker build --target projectors  -t shop/projectors .
#   docker build                      -t shop/shop .        (everything in one process)
#
# docker-compose.yml builds them; README.md, "Run in production", says how
# to run them. No key, password or certificate is ever copied into an image.

# The toolchain: Cargo.toml's rust-version (1.89), Debian 12 like the runtime
# base, so the binaries link against the glibc they will run on.
FROM rust:1.89.0-bookworm AS build
WORKDIR /src
COPY . .
# The registry and the target folder are BuildKit caches: a rebuild after a
# change compiles only what changed. The binaries are copied out of the
# cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --workspace --bins \
    && mkdir -p /out \
    && cp target/release/shop target/release/command-api target/release/projectors \
       target/release/query-api target/release/healthcheck /out/

# The one-shot key generator (docker compose run --rm keygen): the build
# image already has openssl (a dependency of ca-certificates).
FROM rust:1.89.0-bookworm AS keygen
COPY docker/keygen.sh /usr/local/bin/keygen
ENTRYPOINT ["/usr/local/bin/keygen"]

# glibc and libgcc only (the binaries use rustls, no OpenSSL); no shell.
# The nonroot tag's user, uid 65532, by number (a name the host may not resolve).
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
WORKDIR /home/nonroot

# Each service's target: where it listens inside the container, and its
# readiness probed by the healthcheck binary (no curl in distroless).
FROM runtime AS command-api
ENV COMMAND_API_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "http://127.0.0.1:8080/health/ready"]
ENTRYPOINT ["/usr/local/bin/command-api"]

FROM runtime AS query-api
ENV QUERY_API_ADDR=0.0.0.0:8081
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "http://127.0.0.1:8081/health/ready"]
ENTRYPOINT ["/usr/local/bin/query-api"]

FROM runtime AS projectors
ENV PROJECTORS_ADMIN_ADDR=0.0.0.0:8082
EXPOSE 8082
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "http://127.0.0.1:8082/health/ready"]
ENTRYPOINT ["/usr/local/bin/projectors"]

# Everything in one process (what `cargo run` starts), its data in
# /home/nonroot/data; the default target.
FROM runtime AS shop
ENV COMMAND_API_ADDR=0.0.0.0:8080 \
    QUERY_API_ADDR=0.0.0.0:8081 \
    PROJECTORS_ADMIN_ADDR=0.0.0.0:8082
EXPOSE 8080 8081 8082
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "http://127.0.0.1:8081/health/ready"]
ENTRYPOINT ["/usr/local/bin/shop"]
