# openai-proxy container image.
#
#   docker build -t openai-proxy .
#   docker run -d --name openai-proxy --stop-timeout 30 \
#       -p 8000:8000 -p 127.0.0.1:5000:5000 -v openai-proxy-data:/data openai-proxy
#
# Two stages: the official Swift toolchain image (Debian 12) compiles a release binary with the Swift
# standard library and Foundation linked in statically, so the runtime stage is plain
# debian:bookworm-slim with a handful of Debian libraries and no Swift runtime at all.

# Swift 6.2 is the oldest toolchain that can build this package: hummingbird >= 2.28,
# async-http-client >= 1.37, swift-log >= 1.16 and swift-service-lifecycle >= 2.13 all declare
# swift-tools-version 6.2. The default matches the toolchain the project is developed with.
# Override with --build-arg SWIFT_IMAGE=swift:6.2-bookworm if needed; keep it a -bookworm tag so the
# binary links against the same glibc, libsqlite3 and libsystemd as the runtime stage.
ARG SWIFT_IMAGE=swift:6.3-bookworm

# ---------------------------------------------------------------------------------------------------
FROM ${SWIFT_IMAGE} AS build

# Headers for the two C libraries the binary links dynamically (libsqlite3-dev is already in the
# Swift image; listing it keeps this stage correct if that ever changes). pkg-config resolves the
# CSystemd system-library target. Versions are not pinned: Debian stable only ships security and
# point-release fixes, and pinned versions disappear from the mirrors.
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends libsqlite3-dev libsystemd-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# Dependencies first, for layer caching: this layer is rebuilt only when Package.swift or
# Package.resolved change. Package.* also matches when Package.resolved is absent (it is not
# committed); when present, its pinned versions are used exactly.
COPY Package.* ./
RUN if [ -f Package.resolved ]; then swift package resolve --force-resolved-versions; \
    else swift package resolve; fi

# Tests/ too: SwiftPM validates every target declared in Package.swift, including the test target,
# even when building one product (a missing Tests/OpenAIProxyTests fails the build). Tests are not
# compiled. .dockerignore keeps the Python end-to-end tests out.
COPY Plugins ./Plugins
COPY Sources ./Sources
COPY Tests ./Tests

# --static-swift-stdlib links the Swift runtime, Dispatch and Foundation (including its ICU data)
# into the executable. What stays dynamic: glibc, libstdc++, libgcc_s, zlib, libsqlite3, libsystemd.
# -enforce-exclusivity=unchecked: as `make release` (Makefile, README "Building"): the run-time exclusivity checks
# were 16 % of a worker's instructions per request.
RUN swift build -c release --static-swift-stdlib -Xswiftc -enforce-exclusivity=unchecked --product openai-proxy \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/openai-proxy" \
        /staging/usr/local/bin/openai-proxy \
    && strip /staging/usr/local/bin/openai-proxy

# ---------------------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# Runtime libraries only:
#   libsqlite3-0, libsystemd0  linked by the binary (libsystemd: sd_notify, a no-op without systemd)
#   libstdc++6, zlib1g         linked by the binary (already in bookworm-slim; listed to be explicit)
#   ca-certificates            HTTPS to the upstream API
#   tzdata                     local times in logs when TZ is set
#   libjs-bootstrap5, libjs-chart.js  served by the web console from /usr/share/javascript
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends \
        libsqlite3-0 libsystemd0 libstdc++6 zlib1g ca-certificates tzdata \
        libjs-bootstrap5 libjs-chart.js \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged user with a fixed id, so volume ownership is predictable across rebuilds. /data is
# created here with that owner: Docker copies owner and mode into a new named volume.
RUN groupadd --system --gid 10001 openai-proxy \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin openai-proxy \
    && install -d -o 10001 -g 10001 -m 0700 /data

COPY --from=build /staging/usr/local/bin/openai-proxy /usr/local/bin/openai-proxy
# Fails the build here, not at first start, if the binary needs a library this stage lacks.
RUN openai-proxy --help > /dev/null

# The admin API listens on every interface *inside* the container so that it can be published;
# publish it on the host's loopback only (-p 127.0.0.1:5000:5000), never on a public address.
ENV OPENAI_PROXY_DATA_DIR=/data \
    OPENAI_PROXY_LISTEN=0.0.0.0:8000 \
    OPENAI_PROXY_ADMIN_LISTEN=0.0.0.0:5000

# Database (SQLite, WAL), secret.key, admin.token, stats.sock and worker-load.
VOLUME ["/data"]
WORKDIR /data
EXPOSE 8000 5000

USER 10001:10001

# The supervisor runs as PID 1: it installs its own SIGTERM/SIGINT/SIGHUP handlers (PID 1 gets no
# default signal actions) and waits for each child it starts, so no init (tini, --init) is needed.
# SIGTERM drains in-flight requests for up to OPENAI_PROXY_DRAIN_TIMEOUT (default 20 s), which is
# longer than Docker's default 10 s stop timeout: run with --stop-timeout 30 (compose:
# stop_grace_period: 30s) or the drain is cut short by SIGKILL.
STOPSIGNAL SIGTERM

# No curl or wget in the image: bash (always present in Debian) opens a TCP connection with /dev/tcp,
# sends GET /healthz and requires a "200" status line, on the proxy port and then the admin port
# (ports taken from the same variables the server reads). Docker's --timeout bounds a hung server.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "set -e; for listen in \"${OPENAI_PROXY_LISTEN:-0.0.0.0:8000}\" \"${OPENAI_PROXY_ADMIN_LISTEN:-127.0.0.1:5000}\"; do exec 3<>\"/dev/tcp/127.0.0.1/${listen##*:}\"; printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3; read -r -t 4 status <&3; exec 3<&-; case \"$status\" in *' 200 '*) ;; *) echo \"port ${listen##*:}: ${status:-no answer}\"; exit 1;; esac; done"]

ENTRYPOINT ["openai-proxy"]
CMD ["serve"]
