# syntax=docker/dockerfile:1
# Staccato: multi-stage image on Debian 12 (bookworm).
#   docker build -t staccato .
#   docker run --rm -p 5000:5000 staccato
# Settings are environment variables (see the README / `staccato --help`), e.g. -e STACCATO_LOG_FORMAT=json.

############################ build stage ############################
FROM debian:12 AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# Toolchain and -dev packages first, so this layer stays cached across source changes.
COPY deps/install.sh deps/install.sh
RUN bash deps/install.sh build \
 && rm -rf /var/lib/apt/lists/*

COPY . .
# Build outside the source tree so that a build/ directory copied from a checkout cannot interfere.
RUN cmake -S . -B /tmp/build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /tmp/build -j"$(nproc)" \
 && install -D -m 0755 /tmp/build/staccato /out/staccato \
 && strip --strip-unneeded /out/staccato \
 && /out/staccato --version

############################ runtime stage ############################
FROM debian:12 AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Shared libraries only (no -dev packages, no compiler), plus curl for the HEALTHCHECK.
COPY deps/install.sh /tmp/install.sh
RUN bash /tmp/install.sh runtime \
 && rm -rf /var/lib/apt/lists/* /tmp/install.sh \
 && groupadd --system staccato \
 && useradd --system --gid staccato --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin staccato

COPY --from=build /out/staccato /usr/local/bin/staccato
COPY --from=build /src/db/ /app/db/

# Fail the image build if a shared library is missing or curl was not installed.
RUN if ldd /usr/local/bin/staccato | grep 'not found'; then \
      echo 'runtime stage: shared libraries missing (see deps/install.sh runtime)' >&2; exit 1; \
    fi \
 && command -v curl >/dev/null \
 && /usr/local/bin/staccato --version

WORKDIR /app
USER staccato
ENV HOST=0.0.0.0 \
    PORT=5000
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:5000/health || exit 1
ENTRYPOINT ["/usr/local/bin/staccato"]
CMD ["serve"]
