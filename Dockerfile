# asyncmsgr in an rxe-enabled container. The host provides the RDMA device
# (for Soft-RoCE: soft-roce/setup.sh on a host whose kernel has rdma_rxe):
#
#   docker build -t asyncmsgr .
#   docker run --rm --network host --device /dev/infiniband \
#       --cap-add IPC_LOCK --ulimit memlock=-1 asyncmsgr rdmaperf send_lat
#
# Without a container registry (how CI builds it, with podman):
# soft-roce/container.sh build. The base images are then local ones that
# debootstrap made from the Debian mirror with every package below already
# installed (so the apt_install steps find nothing to do), and the Go
# toolchain and module cache reach the build stage as read-only volumes of
# the host's (podman build -v GOROOT:/usr/local/go -v GOMODCACHE:...), with
# GOPROXY=off passed as a build argument. So the same steps
# run either way; nothing here names a registry except the defaults.
ARG BUILD_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
# Empty by default (the golang image's own settings apply).
ARG GOPROXY
# The golang image has this PATH already; a local base gets Go mounted here.
ENV PATH=/usr/local/go/bin:$PATH
WORKDIR /src
COPY . .
RUN soft-roce/container-build.sh /out

FROM ${RUNTIME_IMAGE}
COPY soft-roce/deps.sh /usr/local/share/asyncmsgr/deps.sh
# deps.sh is bash (the image's /bin/sh is dash).
RUN bash -c '. /usr/local/share/asyncmsgr/deps.sh && \
    apt_install rdma-core ibverbs-providers ibverbs-utils rdmacm-utils perftest iproute2 libibverbs1 librdmacm1' && \
    rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
ENTRYPOINT []
CMD ["rdmaperf", "--help"]
