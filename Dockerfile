# mrkv in a container: one image for every mode (coordinator, worker, kvserver, and the clients).
#   docker build -t localhost/mrkv .   (podman: podman build --format docker -t localhost/mrkv .; podman's
#                                       default OCI format drops the HEALTHCHECK)
#   docker run --rm -p 7800:7800 localhost/mrkv            -> key/value server on 0.0.0.0:7800
#   docker run --rm -p 7700:7700 -v job:/work localhost/mrkv coordinator --listen 0.0.0.0:7700 --workdir /work ...
# The build stage uses the README's release preset; the runtime stage holds only the binary, the test
# plugins and the sample texts, and runs as an unprivileged user.

FROM debian:bookworm AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      g++ cmake ninja-build libboost1.81-dev libboost-program-options1.81-dev nlohmann-json3-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt CMakePresets.json ./
COPY include/ include/
COPY src/ src/
COPY test/plugins/ test/plugins/
RUN cmake --preset release -DMRKV_BUILD_TESTS=OFF >/dev/null \
 && cmake --build --preset release \
 && strip build/release/mrkv

FROM debian:bookworm
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libboost-program-options1.81.0 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 7700 --user-group --create-home --home-dir /var/lib/mrkv mrkv \
 && mkdir -p /work && chown mrkv:mrkv /work
COPY --from=build /src/build/release/mrkv /usr/local/bin/mrkv
COPY --from=build /src/build/release/plugins/ /usr/local/lib/mrkv/plugins/
COPY test/data/gutenberg/*.txt /usr/local/share/mrkv/gutenberg/
COPY conf/ /etc/mrkv/
USER mrkv
WORKDIR /work
EXPOSE 7700 7800
# mrkv handles SIGTERM itself (drains, exits 0), so `docker stop` returns at once as PID 1.
# The kvserver's write-ahead log and snapshots (issue 12): a volume, so a recreated container keeps the keys.
VOLUME ["/var/lib/mrkv"]
ENTRYPOINT ["mrkv"]
CMD ["kvserver", "--listen", "0.0.0.0:7800", "--data-dir", "/var/lib/mrkv"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=2s \
  CMD ["mrkv", "probe", "--timeout", "2", "http://127.0.0.1:7800/healthz"]
