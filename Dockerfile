# asyncmsgr in an rxe-enabled container. The host provides the RDMA device
# (for Soft-RoCE: soft-roce/setup.sh on a host whose kernel has rdma_rxe):
#
#   docker build -t asyncmsgr .
#   docker run --rm --network host --device /dev/infiniband \
#       --cap-add IPC_LOCK --ulimit memlock=-1 asyncmsgr rdmaperf send_lat
#
# The build steps are soft-roce/container-build.sh, which CI also runs.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY . .
RUN soft-roce/container-build.sh /out

FROM debian:bookworm-slim
COPY soft-roce/deps.sh /usr/local/share/asyncmsgr/deps.sh
RUN . /usr/local/share/asyncmsgr/deps.sh && \
    apt_install rdma-core ibverbs-providers ibverbs-utils rdmacm-utils perftest iproute2 libibverbs1 librdmacm1 && \
    rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
ENTRYPOINT []
CMD ["rdmaperf", "--help"]
