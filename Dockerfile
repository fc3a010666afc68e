# syntax=docker/dockerfile:1
# Staccato: multi-stage image on Debian 12 (bookworm).
#   docker build -t staccato .
#   docker run --rm -p 5000:5000 staccato
# Settings are environment variables (`staccato --help`), e.g. -e DATABASE_URL=postgresql://... -e REDIS_URL=redis://...
#   docker run --rm -e DATABASE_URL=... staccato migrate      # apply the (embedded) migrations and exit

############################ build stage ############################
FROM debian:12 AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# Toolchain and -dev packages first, so this layer stays cached across source changes.
COPY deps/install.sh deps/install.sh
RUN bash deps/install.sh build \
 && rm -rf /var/lib/apt/lists/*

# The parts of the repo the build reads (db/migrations is compiled into the binary). Listed rather than
# `COPY . .` so that a checkout's build*/ trees, .git and .state/ (live PostgreSQL/Redis data and Unix
# sockets of deps/services.sh) never enter the build context's copy; add new top-level source dirs here.
COPY CMakeLists.txt ./
COPY deps/ deps/
COPY src/ src/
COPY db/ db/
# Out-of-tree build; the tests are not built into the image.
RUN cmake -S . -B /tmp/build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
 && cmake --build /tmp/build -j"$(nproc)" \
 && install -D -m 0755 /tmp/build/staccato /out/staccato \
 && strip --strip-unneeded /out/staccato \
 && /out/staccato --version

############################ docs stage ############################
# The assets of GET /docs and GET /redoc: the npm packages swagger-ui-dist and redoc at the versions deps/install.sh
# pins, fetched by it the same way as on a development machine (with Debian's npm, which stays in this stage).
FROM debian:12 AS docs
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY deps/install.sh deps/install.sh
RUN STACCATO_DOCS_ASSETS=/out/docs bash deps/install.sh docs \
 && rm -rf /var/lib/apt/lists/* \
 && test -f /out/docs/swagger-ui-dist/swagger-ui-bundle.js \
 && test -f /out/docs/redoc/bundles/redoc.standalone.js

############################ runtime stage ############################
FROM debian:12 AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Shared libraries only (no -dev packages, no compiler), ffprobe (package ffmpeg) for uploads,
# ca-certificates for outbound TLS, curl for the HEALTHCHECK.
COPY deps/install.sh /tmp/install.sh
RUN bash /tmp/install.sh runtime \
 && rm -rf /var/lib/apt/lists/* /tmp/install.sh \
 && groupadd --system staccato \
 && useradd --system --gid staccato --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin staccato

COPY --from=build /out/staccato /usr/local/bin/staccato
COPY --from=build /src/db/ /app/db/
# The documentation pages' assets (STACCATO_DOCS_ASSETS below), read-only.
COPY --from=docs /out/docs/ /usr/share/staccato/docs/
# Uploaded audio and covers (STACCATO_MEDIA_DIR), writable by the server user; keep it on a volume.
RUN install -d -o staccato -g staccato -m 0750 /app/media

# Fail the image build if a shared library is missing or curl/ffprobe was not installed.
RUN if ldd /usr/local/bin/staccato | grep 'not found'; then \
      echo 'runtime stage: shared libraries missing (see deps/install.sh runtime)' >&2; exit 1; \
    fi \
 && command -v curl >/dev/null \
 && command -v ffprobe >/dev/null \
 && /usr/local/bin/staccato --version

WORKDIR /app
USER staccato
ENV HOST=0.0.0.0 \
    PORT=5000 \
    STACCATO_MEDIA_DIR=/app/media \
    STACCATO_DOCS_ASSETS=/usr/share/staccato/docs
VOLUME ["/app/media"]
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:5000/health || exit 1
ENTRYPOINT ["/usr/local/bin/staccato"]
CMD ["serve"]
