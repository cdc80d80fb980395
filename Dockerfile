# Image for sysbox-ro-webhook: a static-ish Rust binary on distroless, run as
# uid/gid 65532 with nothing else in the image (no shell, no package manager).
#
#   docker build -t sysbox-ro-webhook:dev .
#
# The builder's Rust version matches the toolchain the project is tested
# with; bump both together.

FROM rust:1.95-bookworm AS builder
WORKDIR /build
# Cargo.toml keeps line tables in release builds; in the image they would
# make the binary about 5x larger (~87 MB instead of ~18 MB). Symbols stay,
# so backtraces still name functions. --build-arg
# CARGO_PROFILE_RELEASE_STRIP=none keeps everything.
ARG CARGO_PROFILE_RELEASE_STRIP=debuginfo

# Dependency layer: build every dependency against placeholder sources so
# this layer is reused until Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked --bin sysbox-ro-webhook \
 && rm -rf src

# The real sources, with build.rs and the list of the functions every request
# runs, which it hands to the linker (build.rs says why). Copied files keep
# their original mtimes, which can be older than the placeholder build; touch
# the crate roots so cargo rebuilds.
COPY build.rs ./
COPY link ./link
COPY src ./src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin sysbox-ro-webhook

# glibc and libgcc only; the :nonroot tag runs as 65532 already, USER makes
# it explicit for admission policies that check the image config.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /build/target/release/sysbox-ro-webhook /sysbox-ro-webhook
USER 65532:65532
# 8443: HTTPS admission (POST /mutate, /validate); 8080: /healthz, /readyz, /metrics.
EXPOSE 8443 8080
ENTRYPOINT ["/sysbox-ro-webhook"]
CMD ["serve"]
