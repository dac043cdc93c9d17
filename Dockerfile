# syntax=docker/dockerfile:1
# The operator image: `docker build -t REGISTRY/servicerefresh:TAG .` (BuildKit, the default
# builder since Docker 23). The development crate (the simulated cluster and the sim, demo and
# bench subcommands) is left out: --no-default-features drops the default `dev` feature.

# Builder: the Rust toolchain CI uses (Cargo.toml's rust-version or newer).
FROM rust:1.95.0-bookworm AS builder
WORKDIR /src
COPY . .
# Dependency caching: the crates.io registry and the target directory live in BuildKit cache
# mounts, so a rebuild after a source change recompiles only the workspace's own crates.
# --locked: build exactly the committed Cargo.lock. The `production` profile (Cargo.toml:
# opt-level "s", fat LTO, one codegen unit) is the build `servicerefresh bench --only
# footprint` measures; it costs a few minutes more than --release and leaves about 7 MiB less
# of the binary resident.
RUN --mount=type=cache,id=servicerefresh-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=servicerefresh-target,target=/src/target \
    cargo build --profile production --locked --no-default-features --bin servicerefresh \
    && install -D -m 0755 target/production/servicerefresh /out/servicerefresh

# Final: distroless with glibc and CA certificates, no shell, no package manager, running as
# the non-root user 65532 (the UID/GID the Helm chart's pod securityContext sets). The tag is
# pinned to a digest; update both together.
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
LABEL org.opencontainers.image.title="servicerefresh" \
      org.opencontainers.image.description="Kubernetes operator that restarts fleets of Deployments in ready-gated batches" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/servicerefresh /servicerefresh
# Two malloc arenas instead of glibc's 8 per core: the operator's threads allocate little and
# briefly, and the default arenas hold about 6 MiB of freed memory (measured by
# `servicerefresh bench --only footprint --operator-env MALLOC_ARENA_MAX=2`; glibc so capped
# also peaks lower than mimalloc or jemalloc: see docs/performance.md).
ENV MALLOC_ARENA_MAX=2
USER 65532:65532
ENTRYPOINT ["/servicerefresh"]
CMD ["run"]
